"""From a ``task`` config to the class-disjoint splits a few-shot family samples from.

Omniglot protocols (``task.protocol``):

* ``"standard"`` (Vinyals et al. 2016; Finn et al. 2017): all 1623 characters of
  ``images_background`` + ``images_evaluation``, shuffled with ``task.split_seed``;
  ``num_train_classes`` (1100) for meta-training, ``num_validation_classes`` (100) for
  validation, the rest (423) for testing, i.e. 1200 characters before testing, as in Finn et
  al.'s code. ``rotate_train`` / ``rotate_eval`` add each character's 90/180/270-degree
  rotations as new classes.
* ``"mini"`` (Omniglot-mini, for CPUs and offline tests): meta-train on the 136 characters of
  ``images_background_small1``, test on the 106 characters of ``images_background_small2``
  that small1 does not contain; no validation split.

Other tfds datasets (``mnist``, ``fashion_mnist``, ``cifar10``, ...): every image of the
``tfds_splits``, grouped by label; the labels are shuffled with ``split_seed`` and split into
``num_train_classes`` / ``num_validation_classes`` / the rest.

Built splits are cached as ``.npz`` under ``task.cache_dir`` (or ``$METALEARN_CACHE_DIR``, or
``~/.cache/metalearn``), keyed by a hash of the source files and the protocol; a cache that
cannot be read is logged, moved aside and rebuilt.
"""

import hashlib
import json
import os
import pathlib
import zipfile

from absl import logging
import ml_collections
import numpy as np

from metalearn.datasets import omniglot, tfds_images
from metalearn.datasets.class_images import ClassImages, DataNotFoundError

OMNIGLOT_ENV = "METALEARN_OMNIGLOT_DIR"
CACHE_ENV = "METALEARN_CACHE_DIR"
PROTOCOLS = ("standard", "mini")
SOURCES = ("zip", "tfds")


def omniglot_dir(task: ml_collections.ConfigDict) -> pathlib.Path:
  """``task.data_dir``, else ``$METALEARN_OMNIGLOT_DIR``; an error naming both if neither."""
  path = task.data_dir or os.environ.get(OMNIGLOT_ENV, "")
  if not path:
    raise DataNotFoundError(
        f"Omniglot's location is not set: set task.data_dir or ${OMNIGLOT_ENV} to a directory "
        "with the original zips (images_background.zip, images_evaluation.zip, or "
        "images_background_small1/2.zip for protocol 'mini'; the repository's tests use "
        "../shared/data/omniglot), or use task.source='tfds'.")
  path = pathlib.Path(path).expanduser()
  if not path.is_dir():
    raise DataNotFoundError(f"Omniglot directory {path} (task.data_dir / ${OMNIGLOT_ENV}) "
                            "does not exist")
  return path


def _omniglot_source(task, split: str) -> tuple[str, callable]:
  """(identity for the cache key, reader) of one original archive split."""
  if task.source == "tfds":
    data_dir = task.data_dir or None
    return f"tfds:omniglot/{split}@{data_dir}", lambda: omniglot.read_tfds(split, data_dir)
  path = omniglot.find_archive(omniglot_dir(task), split)
  if path.is_file():
    identity = hashlib.sha256(path.read_bytes()).hexdigest()
  else:
    identity = f"{path.resolve()}:{sum(1 for _ in path.rglob('*.png'))}"
  return identity, lambda: omniglot.read_archive(path)


def _shuffled_split(classes: ClassImages, task) -> dict[str, ClassImages]:
  order = np.random.default_rng(task.split_seed).permutation(classes.num_classes)
  n_train, n_val = task.num_train_classes, task.num_validation_classes
  if n_train + n_val >= classes.num_classes:
    raise ValueError(f"task.num_train_classes ({n_train}) + task.num_validation_classes "
                     f"({n_val}) must leave test classes out of {classes.num_classes}")
  splits = {"train": order[:n_train], "validation": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:]}
  return {k: classes.select(np.sort(v)) for k, v in splits.items() if len(v)}


def _build(task, readers) -> dict[str, ClassImages]:
  if task.dataset == "omniglot" and task.protocol == "mini":
    small1, small2 = readers["small1"](), readers["small2"]()
    test = {k: v for k, v in small2.items() if k not in small1}
    splits = {"train": omniglot.to_class_images(small1, task.image_size),
              "test": omniglot.to_class_images(test, task.image_size)}
  elif task.dataset == "omniglot":
    characters = {**readers["train"](), **readers["test"]()}
    splits = _shuffled_split(omniglot.to_class_images(characters, task.image_size), task)
  else:
    per_split = [readers[s]() for s in task.tfds_splits]
    names = sorted({n for c in per_split for n in c.names})
    merged = []
    for name in names:
      parts = [c.images[c.names.index(name), :c.counts[c.names.index(name)]]
               for c in per_split if name in c.names]
      merged.append(np.concatenate(parts))
    splits = _shuffled_split(ClassImages.from_lists(merged, names), task)
  if task.dataset == "omniglot":
    rotate = {"train": task.rotate_train, "validation": task.rotate_eval,
              "test": task.rotate_eval}
    splits = {k: v.with_rotations() if rotate[k] else v for k, v in splits.items()}
  return splits


def load_splits(task: ml_collections.ConfigDict) -> dict[str, ClassImages]:
  """The class-disjoint ``train`` / ``validation`` / ``test`` splits a task config names.

  Reads from the cache when it holds this exact data and protocol, else builds and caches.

  Raises:
    DataNotFoundError: the dataset is not where ``task.data_dir`` / the environment point,
      with how to get it.
  """
  if task.dataset == "omniglot":
    archives = ("small1", "small2") if task.protocol == "mini" else ("train", "test")
    sources = {s: _omniglot_source(task, s) for s in archives}
  else:
    sources = {s: (f"tfds:{task.dataset}/{s}@{task.data_dir}",
                   lambda s=s: tfds_images.read_classes(task.dataset, s, task.data_dir or None))
               for s in task.tfds_splits}
  key_fields = {k: task[k] for k in ("dataset", "protocol", "image_size", "split_seed",
                                     "num_train_classes", "num_validation_classes",
                                     "rotate_train", "rotate_eval")}
  key_fields["sources"] = {s: ident for s, (ident, _) in sources.items()}
  digest = hashlib.sha256(json.dumps(key_fields, sort_keys=True, default=str).encode())
  cache_root = pathlib.Path(task.cache_dir or os.environ.get(CACHE_ENV, "")
                            or "~/.cache/metalearn").expanduser()
  path = cache_root / f"{task.dataset}-{task.protocol}-{digest.hexdigest()[:16]}.npz"
  if path.exists():
    try:
      return _load_cache(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # unreadable
      # (truncated, overwritten, an old format): keep it aside for inspection and rebuild.
      aside = path.with_name(path.name + ".corrupt")
      path.replace(aside)
      logging.warning("Dataset cache %s could not be read (%s: %s); moved to %s and rebuilding.",
                      path, type(e).__name__, e, aside)
  splits = _build(task, {s: reader for s, (_, reader) in sources.items()})
  _save_cache(path, splits)
  logging.info("Cached %s splits %s at %s", task.dataset,
               {k: v.num_classes for k, v in splits.items()}, path)
  return splits


def _save_cache(path: pathlib.Path, splits: dict[str, ClassImages]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  arrays = {}
  for name, c in splits.items():
    arrays.update({f"{name}.images": c.images, f"{name}.counts": c.counts,
                   f"{name}.names": np.array(c.names)})
  tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")  # concurrent runs: own tmp
  np.savez(tmp, **arrays)
  tmp.replace(path)


def _load_cache(path: pathlib.Path) -> dict[str, ClassImages]:
  with np.load(path) as z:
    names = sorted({k.split(".")[0] for k in z.files})
    return {n: ClassImages(z[f"{n}.images"], z[f"{n}.counts"],
                           tuple(str(s) for s in z[f"{n}.names"])) for n in names}
