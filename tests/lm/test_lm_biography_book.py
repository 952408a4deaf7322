"""The biography textbook: a function of its seed, every answer in its biography, chapters of
disjoint people, augmentation doing what it says, prerequisites pointing back."""

import re

import numpy as np
import pytest

from metalearn.lm import biography_book as bb
from metalearn.registry import ConfigError


def test_the_book_is_a_function_of_its_seed():
  a = bb.book(3, 20, seed=7, augmentation=bb.FULL, prerequisites=True)
  b = bb.book(3, 20, seed=7, augmentation=bb.FULL, prerequisites=True)
  c = bb.book(3, 20, seed=8, augmentation=bb.FULL, prerequisites=True)
  assert a == b and a != c


def test_every_answer_is_stated_in_its_persons_biographies():
  for aug in (bb.NONE, bb.FULL, bb.Augmentation(3, permute=False, fullname=True)):
    chapters = bb.book(2, 30, seed=1, augmentation=aug, prerequisites=True)
    by_name = {p.name: p for ch in chapters for p in ch.people}
    bios = {}
    for ch in chapters:
      per = aug.multiplicity
      for i, p in enumerate(ch.people):
        bios[p.name] = ch.biographies[i * per:(i + 1) * per]
        assert len(bios[p.name]) == per
    for ch in chapters:
      for qa in ch.qa:
        person = by_name[qa.person]
        assert qa.question.endswith("?") and qa.answer.endswith(".")
        assert qa.text == f"{qa.question} {qa.answer}"
        value = qa.answer[:-1]
        if qa.attribute == "mentor_city":  # two hops: in the mentor's own biographies
          assert all(value in b for b in bios[person.mentor.name])
          assert all(person.mentor.name in b for b in bios[person.name])
        else:
          assert all(value in b for b in bios[person.name]), (qa, bios[person.name])
        assert person.name in qa.question


def test_chapters_hold_disjoint_people_with_unique_names():
  chapters = bb.book(5, 40, seed=3)
  names = [p.name for ch in chapters for p in ch.people]
  assert len(names) == len(set(names)) == 200
  for ch in chapters:
    assert {q.person for q in ch.qa} == {p.name for p in ch.people}
    assert len(ch.qa) == 6 * len(ch.people)  # no relations without prerequisites


def test_prerequisites_point_to_earlier_chapters_only():
  chapters = bb.book(4, 10, seed=2, prerequisites=True)
  seen = set()
  for c, ch in enumerate(chapters):
    for p in ch.people:
      if c == 0:
        assert p.mentor is None and p.attributes == bb.ATTRIBUTES
      else:
        assert p.mentor.name in seen and len(p.attributes) == 8
    seen |= {p.name for p in ch.people}


def test_augmentation_writes_as_it_says():
  person = bb.people(1, seed=5)[0]
  first = person.name.split()[0]
  rng = np.random.RandomState(0)
  plain = bb.biographies(person, bb.NONE, rng)
  assert len(plain) == 1 and plain[0].count(person.name) == 1  # the first sentence only
  assert plain[0].startswith(person.name)  # attributes in their fixed order: birth date first
  full = bb.biographies(person, bb.FULL, rng)
  assert len(full) == 5 and len(set(full)) == 5
  for b in full:  # the full name in every one of the six sentences
    assert len(re.findall(re.escape(person.name), b)) == 6 and " he " not in b
  orders = {tuple(s.split(person.name)[1][:12] for s in b.split(". ")) for b in full}
  assert len(orders) > 1  # permuted
  assert first in person.name


def test_bad_sizes_are_refused():
  with pytest.raises(ConfigError, match="distinct full names"):
    bb.people(10**6, 0)
  with pytest.raises(ConfigError, match="at least 1"):
    bb.Augmentation(multiplicity=0)
  with pytest.raises(ConfigError, match="both at least 1"):
    bb.book(0, 5, 0)
