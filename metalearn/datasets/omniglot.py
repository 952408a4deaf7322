"""Omniglot (Lake et al. 2015): readers for its original zips and for tensorflow-datasets.

Both readers return the same thing, ``{(alphabet, "characterNN"): bool [20, 105, 105]}`` with
ink ``True`` and the drawings of a character in a canonical order (sorted by their bytes), so
the two paths give identical arrays for the same characters. :func:`to_class_images` resizes
to the few-shot resolution (28x28, Lanczos, ink = 255).
"""

import io
import pathlib
import zipfile

import numpy as np
from PIL import Image

from metalearn.datasets.class_images import ClassImages, DataNotFoundError
from metalearn.datasets import tfds_images

Characters = dict[tuple[str, str], np.ndarray]

# The original archives (github.com/brendenlake/omniglot, python/), by tfds split name.
ARCHIVES = {"train": "images_background", "test": "images_evaluation",
            "small1": "images_background_small1", "small2": "images_background_small2"}


def _canonical(drawings: list[np.ndarray]) -> np.ndarray:
  drawings = sorted(drawings, key=lambda d: np.packbits(d).tobytes())
  return np.stack(drawings)


def _ink(png: Image.Image) -> np.ndarray:
  return np.asarray(png.convert("L")) < 128


def read_archive(path: str | pathlib.Path) -> Characters:
  """Reads an original Omniglot archive: a ``.zip`` or the directory it extracts to.

  Layout: ``[images_background/]<alphabet>/character<NN>/<id>_<drawer>.png``.
  """
  path = pathlib.Path(path)
  drawings: dict[tuple[str, str], list[np.ndarray]] = {}
  if path.suffix == ".zip":
    with zipfile.ZipFile(path) as z:
      for name in z.namelist():
        parts = pathlib.PurePosixPath(name).parts
        if name.endswith(".png") and len(parts) >= 3:
          with Image.open(io.BytesIO(z.read(name))) as png:
            drawings.setdefault((parts[-3], parts[-2]), []).append(_ink(png))
  else:
    for png_path in path.rglob("*.png"):
      with Image.open(png_path) as png:
        drawings.setdefault((png_path.parent.parent.name, png_path.parent.name), []).append(
            _ink(png))
  if not drawings:
    raise DataNotFoundError(f"{path} holds no Omniglot drawings "
                            "(<alphabet>/character<NN>/*.png)")
  return {k: _canonical(v) for k, v in drawings.items()}


def read_tfds(split: str, data_dir: str | None) -> Characters:
  """Reads a split (``train``, ``test``, ``small1``, ``small2``) of the tfds ``omniglot``."""
  source = tfds_images.data_source("omniglot", split, data_dir)
  alphabets = source.dataset_info.features["alphabet"].names
  drawings: dict[tuple[str, str], list[np.ndarray]] = {}
  for start in range(0, len(source), 2048):
    for r in source.__getitems__(list(range(start, min(start + 2048, len(source))))):
      key = (alphabets[int(r["alphabet"])], f"character{int(r['alphabet_char_id']) + 1:02d}")
      drawings.setdefault(key, []).append(r["image"][..., 0] < 128)
  return {k: _canonical(v) for k, v in drawings.items()}


def find_archive(data_dir: pathlib.Path, split: str) -> pathlib.Path:
  """``<data_dir>/<archive>.zip`` or the extracted ``<data_dir>/<archive>/``."""
  stem = ARCHIVES[split]
  for candidate in (data_dir / f"{stem}.zip", data_dir / stem):
    if candidate.exists():
      return candidate
  raise DataNotFoundError(
      f"Omniglot archive {stem}.zip (or its extracted folder) is not in {data_dir}. Get it "
      f"from https://github.com/brendenlake/omniglot/tree/master/python on a connected machine "
      f"and copy it there, or use task.source='tfds' after running "
      f"tfds.builder('omniglot').download_and_prepare(file_format='array_record').")


def to_class_images(characters: Characters, image_size: int = 28) -> ClassImages:
  """Characters in sorted ``(alphabet, character)`` order, resized, ink 255, one channel."""
  keys = sorted(characters)
  per_class = []
  for key in keys:
    ink = characters[key]
    resized = [np.asarray(Image.fromarray(d.astype(np.uint8) * 255).resize(
        (image_size, image_size), Image.LANCZOS)) for d in ink]
    per_class.append(np.stack(resized)[..., None])
  return ClassImages.from_lists(per_class, [f"{a}/{c}" for a, c in keys])
