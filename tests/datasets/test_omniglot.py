"""Omniglot readers (zip, directory, tfds), protocols, cache and missing-data errors."""

import io
import pathlib
import zipfile

import numpy as np
from PIL import Image
import pytest

from metalearn import config as config_lib
from metalearn.datasets import DataNotFoundError, load_splits, omniglot


def _task(**overrides):
  task = config_lib.default_config(task="few_shot").task
  task.update({"protocol": "mini", "rotate_eval": False, **overrides})
  return task


def _build_tfds_omniglot(zips: dict[str, pathlib.Path], data_dir: pathlib.Path):
  """Writes a real tfds ``omniglot`` dataset (array_record) holding the given zip splits,
  with tfds' own Omniglot builder class (features, info, file layout); only the source of its
  examples is swapped from the download to the local zips."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.image_classification import omniglot as tfds_omniglot  # pylint: disable=g-import-not-at-top

  def examples(path):
    with zipfile.ZipFile(path) as z:
      for name in sorted(n for n in z.namelist() if n.endswith(".png")):
        _, alphabet, character, fname = name.split("/")
        image = Image.open(io.BytesIO(z.read(name))).convert("RGB")
        yield f"{alphabet}_{character}_{fname}", {
            "image": image, "alphabet": alphabet,
            "alphabet_char_id": int(character[len("character"):]) - 1,
            "label": int(fname.split("_")[0]) - 1}

  with tfds.core.registered.skip_registration():
    class LocalOmniglot(tfds_omniglot.Omniglot):
      name = "omniglot"

      def _split_generators(self, dl_manager):
        del dl_manager
        alphabets = sorted({k.split("_character")[0] for p in zips.values()
                            for k, _ in examples(p)})
        self.info.features["alphabet"].names = alphabets + [
            f"unused_{i}" for i in range(50 - len(alphabets))]
        return [tfds.core.SplitGenerator(name=k, gen_kwargs={"directory": v})
                for k, v in zips.items()]

      def _generate_examples(self, directory):
        yield from examples(directory)

  LocalOmniglot(data_dir=str(data_dir), file_format="array_record").download_and_prepare()


def test_zip_directory_and_tfds_readers_agree(omniglot_dir, tmp_path):
  small1 = omniglot_dir / "images_background_small1.zip"
  from_zip = omniglot.read_archive(small1)
  with zipfile.ZipFile(small1) as z:
    z.extractall(tmp_path / "extracted")
  from_dir = omniglot.read_archive(tmp_path / "extracted")
  # one tfds build of both archives serves both comparisons
  _build_tfds_omniglot({"small1": small1, "small2": omniglot_dir /
                        "images_background_small2.zip"}, tmp_path / "tfds")
  from_tfds = omniglot.read_tfds("small1", str(tmp_path / "tfds"))
  assert len(from_zip) == 136
  assert sorted(from_zip) == sorted(from_dir) == sorted(from_tfds)
  for key, drawings in from_zip.items():
    assert drawings.shape == (20, 105, 105) and drawings.dtype == bool
    np.testing.assert_array_equal(drawings, from_dir[key])
    np.testing.assert_array_equal(drawings, from_tfds[key])
  # The whole pipeline gives the same splits from either source.
  via_zip = load_splits(_task(source="zip", data_dir=str(omniglot_dir),
                              cache_dir=str(tmp_path / "c1")))
  via_tfds = load_splits(_task(source="tfds", data_dir=str(tmp_path / "tfds"),
                               cache_dir=str(tmp_path / "c2")))
  assert via_zip.keys() == via_tfds.keys() == {"train", "test"}
  for split in via_zip:
    assert via_zip[split].fingerprint() == via_tfds[split].fingerprint()


def test_mini_protocol_is_character_disjoint_with_rotated_training_classes(omniglot_dir):
  splits = load_splits(_task())
  train, test = splits["train"], splits["test"]
  assert train.num_classes == 136 * 4 and test.num_classes == 106
  assert train.images.shape[1:] == (20, 28, 28, 1) and train.images.dtype == np.uint8
  assert np.all(train.counts == 20) and np.all(test.counts == 20)
  base = {n.split("@")[0] for n in train.names}
  assert len(base) == 136 and not base & set(test.names)
  # Rotated classes really are the rotations of their base character.
  i = train.names.index(sorted(base)[0])
  np.testing.assert_array_equal(train.images[i + 1], np.rot90(train.images[i], 1, axes=(1, 2)))
  assert train.names[i + 2].endswith("@rot180")
  # Ink is bright on a dark background after the 105 -> 28 Lanczos resize.
  assert 0 < train.images.mean() < 60


def test_standard_protocol_splits_by_character(omniglot_dir, tmp_path):
  # Stand-ins for images_background / images_evaluation: the two small archives (242 distinct
  # characters, 50 shared between them).
  (tmp_path / "images_background.zip").symlink_to(omniglot_dir / "images_background_small1.zip")
  (tmp_path / "images_evaluation.zip").symlink_to(omniglot_dir / "images_background_small2.zip")
  splits = load_splits(_task(protocol="standard", data_dir=str(tmp_path), rotate_eval=True,
                             num_train_classes=100, num_validation_classes=20))
  sizes = {k: v.num_classes for k, v in splits.items()}
  assert sizes == {"train": 400, "validation": 80, "test": (242 - 120) * 4}
  chars = {k: {n.split("@")[0] for n in v.names} for k, v in splits.items()}
  assert not chars["train"] & chars["validation"] and not chars["train"] & chars["test"]
  assert not chars["validation"] & chars["test"]
  other_seed = load_splits(_task(protocol="standard", data_dir=str(tmp_path), split_seed=1,
                                 num_train_classes=100, num_validation_classes=20))
  assert {n.split("@")[0] for n in other_seed["train"].names} != chars["train"]


def test_cache_is_reused_and_a_corrupt_cache_is_moved_aside_and_rebuilt(omniglot_dir, tmp_path):
  task = _task(cache_dir=str(tmp_path / "cache"))
  first = load_splits(task)
  (cache,) = (tmp_path / "cache").glob("*.npz")
  stamp = cache.stat().st_mtime_ns
  assert load_splits(task)["train"].fingerprint() == first["train"].fingerprint()
  assert cache.stat().st_mtime_ns == stamp  # read, not rewritten
  cache.write_bytes(cache.read_bytes()[:1000])  # truncated, as by a full disk
  rebuilt = load_splits(task)
  assert rebuilt["test"].fingerprint() == first["test"].fingerprint()
  assert (tmp_path / "cache" / (cache.name + ".corrupt")).exists()


def test_missing_data_errors_say_how_to_get_it(tmp_path, monkeypatch):
  monkeypatch.delenv("METALEARN_OMNIGLOT_DIR", raising=False)
  with pytest.raises(DataNotFoundError, match="task.data_dir or \\$METALEARN_OMNIGLOT_DIR"):
    load_splits(_task(cache_dir=str(tmp_path)))
  with pytest.raises(DataNotFoundError, match="images_background_small1.zip .*is not in"):
    load_splits(_task(data_dir=str(tmp_path), cache_dir=str(tmp_path)))
  with pytest.raises(DataNotFoundError, match="does not exist"):
    load_splits(_task(data_dir=str(tmp_path / "nowhere")))
  with pytest.raises(DataNotFoundError, match="not prepared .*download_and_prepare"):
    load_splits(_task(source="tfds", data_dir=str(tmp_path / "tfds"), cache_dir=str(tmp_path)))
  with pytest.raises(DataNotFoundError, match="not prepared .*file_format='array_record'"):
    load_splits(_task(dataset="mnist", data_dir=str(tmp_path / "tfds"), cache_dir=str(tmp_path),
                      protocol="standard"))
