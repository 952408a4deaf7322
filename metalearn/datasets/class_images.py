"""Labelled images grouped by class: the format every few-shot family samples from."""

import dataclasses
import hashlib

import numpy as np


class DataNotFoundError(FileNotFoundError):
  """A dataset is not where the config or environment says; the message says how to get it."""


@dataclasses.dataclass(frozen=True)
class ClassImages:
  """Images of ``C`` classes, padded to the largest class.

  Attributes:
    images: ``uint8 [C, max_per_class, H, W, channels]``; rows past ``counts[c]`` are zero.
    counts: ``int32 [C]``, how many real images class ``c`` has.
    names: ``C`` class names (e.g. ``"Greek/character03"``, or ``"Greek/character03@rot90"``).
  """
  images: np.ndarray
  counts: np.ndarray
  names: tuple[str, ...]

  def __post_init__(self):
    if self.images.ndim != 5 or self.images.dtype != np.uint8:
      raise ValueError(f"images must be uint8 [C, n, H, W, channels], got {self.images.dtype} "
                       f"{self.images.shape}")
    if self.counts.shape != (self.images.shape[0],) or len(self.names) != self.images.shape[0]:
      raise ValueError(f"{self.images.shape[0]} classes of images but {self.counts.shape} "
                       f"counts and {len(self.names)} names")

  @property
  def num_classes(self) -> int:
    return self.images.shape[0]

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.images.shape[2:])

  @classmethod
  def from_lists(cls, per_class: list[np.ndarray], names: list[str]) -> "ClassImages":
    """Pads a list of ``[n_c, H, W, channels]`` uint8 arrays into one array."""
    n_max = max(len(x) for x in per_class)
    images = np.zeros((len(per_class), n_max) + per_class[0].shape[1:], np.uint8)
    for i, x in enumerate(per_class):
      images[i, :len(x)] = x
    return cls(images, np.array([len(x) for x in per_class], np.int32), tuple(names))

  def select(self, indices) -> "ClassImages":
    """The classes at ``indices``, in that order."""
    indices = np.asarray(indices, np.int64)
    return ClassImages(self.images[indices], self.counts[indices],
                       tuple(self.names[i] for i in indices))

  def with_rotations(self) -> "ClassImages":
    """Each class and its rotations by 90, 180 and 270 degrees as new classes (4x classes)."""
    rotated = [np.rot90(self.images, k, axes=(2, 3)) for k in range(4)]
    images = np.stack(rotated, axis=1).reshape((-1,) + self.images.shape[1:])
    names = tuple(f"{n}@rot{90 * k}" if k else n for n in self.names for k in range(4))
    return ClassImages(np.ascontiguousarray(images), np.repeat(self.counts, 4), names)

  def fingerprint(self) -> str:
    """SHA-256 of the content (images, counts, names); equal data give equal fingerprints."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(self.images).tobytes())
    h.update(self.counts.tobytes())
    h.update("\n".join(self.names).encode())
    return h.hexdigest()
