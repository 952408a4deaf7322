"""Image-classification datasets from tensorflow-datasets, read without the TensorFlow runtime.

Datasets are read through ``tfds.data_source`` (random access to ``array_record`` files, images
decoded by PIL), so only a dataset prepared in the ``array_record`` format can be read:

  tfds.builder("mnist", data_dir=DIR).download_and_prepare(file_format="array_record")

(on a machine with internet), or ``tfds convert_format`` for a dataset already prepared as
tfrecord.
"""

import numpy as np

from metalearn.datasets.class_images import ClassImages, DataNotFoundError


def data_source(name: str, split: str, data_dir: str | None):
  """``tfds.data_source`` for a prepared dataset, or :class:`DataNotFoundError` saying how."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top (heavy, optional path)
  builder = tfds.builder(name, data_dir=data_dir or None)
  prepare = (f"prepare it on a machine with internet: tfds.builder({name!r}, "
             f"data_dir=DIR).download_and_prepare(file_format='array_record'), then copy DIR "
             f"here and set task.data_dir (or TFDS_DATA_DIR) to it")
  if not builder.is_prepared():
    raise DataNotFoundError(f"tfds dataset {name!r} is not prepared under "
                            f"{builder.data_dir_root}; {prepare}.")
  formats = {getattr(f, "value", str(f)) for f in
             (builder.info.file_format, *builder.info.alternative_file_formats)}
  if "array_record" not in formats:
    raise DataNotFoundError(
        f"tfds dataset {name!r} at {builder.data_dir} is prepared as {formats}, which has no "
        f"random access; convert it (tfds convert_format --dataset_version_dir="
        f"{builder.data_dir} --out_file_format=array_record) or {prepare}.")
  return tfds.data_source(name, split=split, data_dir=data_dir or None, download=False)


def read_classes(name: str, split: str, data_dir: str | None) -> ClassImages:
  """All images of a split, grouped by their ``label`` (class names from the dataset info)."""
  source = data_source(name, split, data_dir)
  label_names = source.dataset_info.features["label"].names
  images, labels = [], []
  for start in range(0, len(source), 4096):
    rows = source.__getitems__(list(range(start, min(start + 4096, len(source)))))
    images += [r["image"] for r in rows]
    labels += [int(r["label"]) for r in rows]
  images, labels = np.stack(images), np.array(labels)
  if images.ndim == 3:
    images = images[..., None]
  present = np.unique(labels)
  return ClassImages.from_lists([images[labels == c] for c in present],
                                [label_names[c] for c in present])
