"""Generic tfds image datasets (MNIST, Fashion-MNIST, CIFAR-10) via tfds.data_source, no TF."""

import jax
import numpy as np
from PIL import Image
import pytest

from metalearn import config as config_lib
from metalearn.datasets import load_splits
from metalearn.tasks.classification import FewShotClassification


def _build(builder_cls, images, labels, data_dir, splits) -> list[str]:
  """Writes a real tfds dataset (array_record) with ``builder_cls``'s features, info and file
  layout; only its examples come from ``images`` / ``labels`` instead of the download.
  Returns the dataset's label names."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  with tfds.core.registered.skip_registration():
    class Local(builder_cls):
      name = builder_cls.name

      def _split_generators(self, dl_manager):
        del dl_manager
        return [tfds.core.SplitGenerator(name=s, gen_kwargs={"index": ix})
                for s, ix in splits.items()]

      def _generate_examples(self, index):
        for i in index:
          image = images[i][..., 0] if images.shape[-1] == 1 else images[i]
          example = {"image": Image.fromarray(image), "label": int(labels[i])}
          if "id" in self.info.features:  # cifar10 also stores the source file's name
            example["id"] = f"example_{i}"
          yield int(i), example

    builder = Local(data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare()
  return builder.info.features["label"].names


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10"])
def test_tfds_dataset_is_grouped_by_class_and_split_by_class(dataset, tmp_path):
  from tensorflow_datasets.image_classification import cifar, mnist  # pylint: disable=g-import-not-at-top
  builder_cls, shape = {"mnist": (mnist.MNIST, (28, 28, 1)),
                        "fashion_mnist": (mnist.FashionMNIST, (28, 28, 1)),
                        "cifar10": (cifar.Cifar10, (32, 32, 3))}[dataset]
  images = np.random.default_rng(0).integers(0, 256, (60,) + shape, dtype=np.uint8)
  labels = np.arange(60) % 10
  label_names = _build(builder_cls, images, labels, tmp_path / "tfds",
                       {"train": range(0, 40), "test": range(40, 60)})

  task = config_lib.default_config(task="few_shot").task
  task.update(dataset=dataset, source="tfds", data_dir=str(tmp_path / "tfds"),
              cache_dir=str(tmp_path / "cache"), tfds_splits=("train", "test"),
              num_train_classes=6, num_validation_classes=2)
  splits = load_splits(task)
  assert {k: v.num_classes for k, v in splits.items()} == {"train": 6, "validation": 2,
                                                            "test": 2}
  names = [n for split in splits.values() for n in split.names]
  assert sorted(names) == sorted(label_names)  # class-disjoint, every class somewhere
  for split in splits.values():
    assert split.images.shape[2:] == shape and split.images.dtype == np.uint8
    for c, name in enumerate(split.names):
      written = images[labels == label_names.index(name)]
      assert split.counts[c] == len(written) == 6  # 4 from train, 2 from test
      got = split.images[c, :split.counts[c]]
      assert sorted(map(bytes, got)) == sorted(map(bytes, written)), name

  family = FewShotClassification.from_classes(splits["train"], num_ways=5, num_support=1,
                                              num_query=2)
  episode = jax.jit(family.sample)(jax.random.key(0))
  assert episode.support_x.shape == (5,) + shape and episode.query_x.shape == (10,) + shape

  reshuffled = task.copy_and_resolve_references()
  reshuffled.split_seed = 1
  assert set(load_splits(reshuffled)["train"].names) != set(splits["train"].names)
