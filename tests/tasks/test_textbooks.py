"""Textbook families: chapter structure by value, reading order, single-chapter tasks."""

import collections

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from metalearn.tasks import TextbookOmniglot, TextbookRegression, sample_batch
from metalearn.tasks import textbook_omniglot


@pytest.fixture(scope="module")
def book():
  return TextbookRegression(num_chapters=4, exercises_per_chapter=3, batch_size=5, num_query=7)


@pytest.fixture(scope="module")
def books(book):
  """Three books (sampled in one jitted call, shared by the tests)."""
  return jax.jit(sample_batch, static_argnums=2)(book, jax.random.key(0), 3)


def test_regression_book_shapes_and_reading_order(books):
  ep = jax.device_get(jax.tree.map(lambda a: a[0], books))
  T, C = 12, 4
  assert ep.support_x.shape == (T, 5, 1 + C) and ep.support_y.shape == (T, 5, 1)
  assert ep.query_x.shape == (C, 7, 1 + C) and ep.query_y.shape == (C, 7, 1)
  np.testing.assert_array_equal(ep.info["chapter_of_step"], np.repeat(np.arange(C), 3))
  # every exercise of chapter c carries the thermometer code z(c) = (1[j <= c])_j
  codes = np.asarray(ep.support_x[..., 1:])
  for t, c in enumerate(np.repeat(np.arange(C), 3)):
    np.testing.assert_array_equal(codes[t], np.broadcast_to(np.arange(C) <= c, (5, C)))
  for c in range(C):
    np.testing.assert_array_equal(ep.query_x[c, :, 1:], np.broadcast_to(np.arange(C) <= c,
                                                                       (7, C)))
  x = np.asarray(ep.support_x[..., 0])
  assert x.min() >= -5 and x.max() <= 5 and np.unique(x).size == x.size  # fresh points


def test_chapter_c_targets_are_built_from_the_first_c_basis_functions(book, books):
  ep = jax.device_get(jax.tree.map(lambda a: a[1], books))
  a = np.asarray(ep.info["coefficients"], np.float64)
  omega, psi = book.basis_parameters()
  target = jax.jit(book.target)
  for data_x, data_y, chapters in ((ep.query_x, ep.query_y, np.arange(4)),
                                   (ep.support_x.reshape(4, 15, 5),
                                    ep.support_y.reshape(4, 15, 1), np.arange(4))):
    for c in chapters:
      x = np.asarray(data_x[c, :, :1])
      phi = np.sin(omega * x.astype(np.float64) + psi)  # [n, C], the basis by hand
      expected = phi[:, :c + 1] @ a[:c + 1]
      np.testing.assert_allclose(np.asarray(data_y[c, :, 0]), expected, rtol=1e-5, atol=1e-5)
      # coefficients of later basis functions leave chapter c unchanged; earlier ones do not
      later = a.copy()
      later[c + 1:] += 10.0
      same = target(jnp.asarray(later, jnp.float32), data_x[c])
      np.testing.assert_allclose(same, data_y[c], rtol=1e-5, atol=1e-5)
      earlier = a.copy()
      earlier[c] += 1.0
      assert not np.allclose(target(jnp.asarray(earlier, jnp.float32), data_x[c]),
                             data_y[c])


def test_basis_is_shared_by_all_books_and_set_by_its_seed(book, books):
  omega, psi = book.basis_parameters()
  assert omega.shape == psi.shape == (4,) and np.all((omega >= 0.5) & (omega <= 2.0))
  again = TextbookRegression(num_chapters=4, exercises_per_chapter=9).basis_parameters()
  np.testing.assert_array_equal(np.stack(again), np.stack([omega, psi]))
  other = TextbookRegression(num_chapters=4, basis_seed=1).basis_parameters()
  assert not np.allclose(other[0], omega)
  # different books: different coefficients over the same basis
  assert np.unique(np.asarray(books.info["coefficients"]).round(5), axis=0).shape[0] == 3


def test_regression_single_chapter_family(book):
  single = book.single_chapter_family()
  assert (single.num_support, single.num_query) == (15, 7) and single.num_chapters == 4
  assert single.input_shape == book.input_shape and single.output_dim == book.output_dim
  eps = jax.device_get(jax.jit(sample_batch, static_argnums=2)(single, jax.random.key(3), 64))
  target = jax.jit(book.target)
  assert eps.support_x.shape == (64, 15, 5) and eps.query_x.shape == (64, 7, 5)
  chapters = np.asarray(eps.info["chapter"])
  assert set(chapters) == {0, 1, 2, 3}  # uniform over chapters
  for i in range(4):
    c = chapters[i]
    np.testing.assert_array_equal(eps.support_x[i, :, 1:], np.broadcast_to(
        np.arange(4) <= c, (15, 4)))
    np.testing.assert_allclose(target(eps.info["coefficients"][i], eps.query_x[i]),
                               eps.query_y[i], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def alphabet_splits(tmp_path_factory):
  from tests.conftest import OMNIGLOT_DIR  # pylint: disable=g-import-not-at-top
  if not (OMNIGLOT_DIR / "images_background_small1.zip").exists():
    pytest.skip(f"Omniglot zips not found in {OMNIGLOT_DIR}: set METALEARN_OMNIGLOT_DIR")
  task = ml_collections.ConfigDict(dict(source="zip", data_dir=str(OMNIGLOT_DIR),
                                        cache_dir=str(tmp_path_factory.mktemp("cache")),
                                        protocol="mini", image_size=28))
  return textbook_omniglot.load_alphabet_splits(task)


def test_omniglot_splits_are_alphabet_disjoint(alphabet_splits):
  alphabets = {k: {textbook_omniglot.alphabet_of(n) for n in v.names}
               for k, v in alphabet_splits.items()}
  assert alphabets["train"] == {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}
  assert alphabets["test"] and not alphabets["train"] & alphabets["test"]


def test_omniglot_standard_protocol_splits_by_the_background_archives_alphabets(tmp_path):
  from tests.conftest import OMNIGLOT_DIR  # pylint: disable=g-import-not-at-top
  if not (OMNIGLOT_DIR / "images_background_small1.zip").exists():
    pytest.skip(f"Omniglot zips not found in {OMNIGLOT_DIR}: set METALEARN_OMNIGLOT_DIR")
  # stand-ins for the full archives: small1 as images_background, small2 as evaluation
  (tmp_path / "images_background.zip").symlink_to(OMNIGLOT_DIR / "images_background_small1.zip")
  (tmp_path / "images_evaluation.zip").symlink_to(OMNIGLOT_DIR / "images_background_small2.zip")
  task = ml_collections.ConfigDict(dict(source="zip", data_dir=str(tmp_path),
                                        cache_dir=str(tmp_path / "cache"), protocol="standard",
                                        image_size=28))
  splits = textbook_omniglot.load_alphabet_splits(task)
  alphabets = {k: {textbook_omniglot.alphabet_of(n) for n in v.names} for k, v in splits.items()}
  assert alphabets == {"train": {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"},
                       "test": {"Japanese_(katakana)", "Sanskrit", "Tagalog"}}


def test_omniglot_chapters_are_alphabets_with_labels_over_the_book(alphabet_splits):
  classes = alphabet_splits["test"]
  family = TextbookOmniglot.from_classes(classes, num_chapters=2, num_ways=3, num_support=4,
                                         num_query=3, batch_size=2)
  C, n, E = 2, 3, 6
  assert family.output_dim == 6 and family.exercises_per_chapter == E
  eps = jax.device_get(jax.jit(sample_batch, static_argnums=2)(family, jax.random.key(0), 5))
  assert eps.support_x.shape == (5, C * E, 2, 28, 28, 1)
  assert eps.query_x.shape == (5, C, n * 3, 28, 28, 1)
  for i in range(5):
    info = jax.tree.map(lambda a: np.asarray(a[i]), eps.info)
    names = [[classes.names[k] for k in row] for row in info["classes"]]
    chapter_alphabets = [{textbook_omniglot.alphabet_of(x) for x in row} for row in names]
    assert all(len(a) == 1 for a in chapter_alphabets)  # one alphabet per chapter
    assert chapter_alphabets[0] != chapter_alphabets[1]  # distinct alphabets
    assert [family.alphabets[a] for a in info["alphabets"]] == [
        a.pop() for a in chapter_alphabets]
    assert len({k for row in info["classes"] for k in row}) == C * n  # distinct characters
    # labels: chapter c's characters are c*n .. c*n+n-1; read class by class
    sy, qy = np.asarray(eps.support_y[i]), np.asarray(eps.query_y[i])
    np.testing.assert_array_equal(sy.reshape(C, n, 4), np.arange(C * n).reshape(C, n, 1)
                                  * np.ones((1, 1, 4), int))
    np.testing.assert_array_equal(qy, np.repeat(np.arange(C * n), 3).reshape(C, n * 3))
    # query images are never among the exercises' images (per character, and as pixels)
    picks = info["images"]  # [C, n, s + q]
    for c in range(C):
      for j in range(n):
        assert not set(picks[c, j, :4]) & set(picks[c, j, 4:])
        assert len(set(picks[c, j])) == 7
    support = np.asarray(eps.support_x[i]).reshape(C, n * 4, -1)
    query = np.asarray(eps.query_x[i]).reshape(C, n * 3, -1)
    assert not (support[:, :, None, :] == query[:, None, :, :]).all(-1).any()


def test_omniglot_single_chapter_labels_stay_in_the_chapter_block(alphabet_splits):
  family = TextbookOmniglot.from_classes(alphabet_splits["train"], num_chapters=3, num_ways=4,
                                         num_support=2, num_query=2, batch_size=4)
  single = family.single_chapter_family()
  assert (single.num_support, single.num_query, single.output_dim) == (8, 8, 12)
  eps = jax.device_get(jax.jit(sample_batch, static_argnums=2)(single, jax.random.key(1), 30))
  counts = collections.Counter(np.asarray(eps.info["chapter"]).tolist())
  assert set(counts) == {0, 1, 2}
  for i in range(30):
    c = int(eps.info["chapter"][i])
    np.testing.assert_array_equal(eps.support_y[i], np.repeat(c * 4 + np.arange(4), 2))
  with pytest.raises(ValueError, match="must divide num_ways"):
    TextbookOmniglot.from_classes(alphabet_splits["train"], 2, 3, 5, 2, batch_size=2)
  with pytest.raises(ValueError, match="Lower task.num_chapters or task.num_ways"):
    TextbookOmniglot.from_classes(alphabet_splits["test"], 4, 3, 2, 2, 2)
