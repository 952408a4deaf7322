"""Base datasets for few-shot tasks: labelled images grouped by class, as device-ready arrays.

* :mod:`~metalearn.datasets.class_images`: :class:`ClassImages`, the one in-memory format
  (``uint8 [classes, max_per_class, H, W, C]`` plus per-class counts) and its ``.npz`` cache.
* :mod:`~metalearn.datasets.omniglot`: Omniglot from its original zips or directories
  (offline) or from tensorflow-datasets, with the standard few-shot protocols.
* :mod:`~metalearn.datasets.tfds_images`: any tfds image-classification dataset (``mnist``,
  ``fashion_mnist``, ``cifar10``, ...) read through ``tfds.data_source`` (array_record, no
  TensorFlow runtime).
* :mod:`~metalearn.datasets.loading`: the config-facing entry point :func:`load_splits`.
"""

from metalearn.datasets.class_images import ClassImages, DataNotFoundError
from metalearn.datasets.loading import load_splits

__all__ = ["ClassImages", "DataNotFoundError", "load_splits"]
