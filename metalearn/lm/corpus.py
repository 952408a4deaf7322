"""Offline corpora for pretraining the decoder LM, and their packing into training sequences.

* ``biographies``: procedural biographies of made-up people (birth date and city, university,
  field of study, employer and its city), each fact written with one of several paraphrases,
  sentences in random order. Text with grammar, repeated structure and facts, generated from a
  seed in well under a second: no download. Held-out people give the evaluation split.
* ``files``: the files under a local directory that match glob patterns (by default every
  ``.txt`` / ``.md`` file at any depth; ``("*.py",)`` reads the Python standard library's
  top-level modules from its directory), one document per file; the last ``eval_fraction`` of
  files (sorted by path) are held out.

:func:`pack` joins tokenised documents with the end-of-sequence token and cuts the stream into
rows of ``seq_len + 1`` tokens (inputs and shifted targets), dropping the remainder.
"""

import pathlib
from typing import Sequence

import numpy as np

from metalearn.registry import ConfigError

FIRST = ("Ada", "Alan", "Grace", "Emmy", "Kurt", "Rosalind", "John", "Marie", "Claude", "Lise",
         "Niels", "Barbara", "Edsger", "Katherine", "Dorothy", "Srinivasa", "Sofia", "Paul",
         "Hedy", "Tim", "Frances", "Donald", "Ruth", "Yoshua", "Fei", "Geoffrey", "Leslie",
         "Shafi", "Andrew", "Cynthia", "Judea", "Radia", "Vint", "Margaret", "Ken", "Anita",
         "Dennis", "Jean", "Oliver", "Mira")
LAST = ("Lovelace", "Turing", "Hopper", "Noether", "Godel", "Franklin", "Neumann", "Curie",
        "Shannon", "Meitner", "Bohr", "Liskov", "Dijkstra", "Johnson", "Vaughan", "Ramanujan",
        "Kovalevskaya", "Dirac", "Lamarr", "Berners", "Allen", "Knuth", "Nussenzweig", "Bengio",
        "Li", "Hinton", "Lamport", "Goldwasser", "Yao", "Dwork", "Pearl", "Perlman", "Cerf",
        "Hamilton", "Thompson", "Borg", "Ritchie", "Bartik", "Selfridge", "Murati")
CITIES = ("London", "Paris", "Berlin", "Vienna", "Zurich", "Boston", "Toronto", "Madras",
          "Kyoto", "Lisbon", "Prague", "Dublin", "Oslo", "Cairo", "Lima", "Austin", "Seattle",
          "Milan", "Warsaw", "Athens", "Nairobi", "Seoul", "Denver", "Porto")
UNIVERSITIES = ("Cambridge", "Princeton", "MIT", "Stanford", "Oxford", "Caltech", "ETH Zurich",
                "the Sorbonne", "Berkeley", "Harvard", "Toronto", "Kyoto University", "Edinburgh",
                "Delft", "Columbia", "Yale")
FIELDS = ("mathematics", "physics", "chemistry", "computer science", "biology", "astronomy",
          "economics", "linguistics", "statistics", "philosophy", "engineering", "medicine")
EMPLOYERS = ("Bell Labs", "IBM", "Xerox PARC", "the Royal Society", "CERN", "NASA",
             "DeepMind", "Intel", "Siemens", "Philips", "Nokia", "Bosch", "Airbus", "Sony")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

TEMPLATES = {
    "birth": ("{name} was born on {month} {day}, {year}.",
              "{name} came into the world on {month} {day}, {year}.",
              "The birthday of {name} is {month} {day}, {year}."),
    "city": ("{pronoun} was born in {city}.", "{pronoun} spent {poss} early years in {city}.",
             "{name} grew up in {city}."),
    "university": ("{pronoun} studied at {university}.",
                   "{pronoun} received {poss} education at {university}.",
                   "{name} is a graduate of {university}."),
    "field": ("{pronoun} majored in {field}.", "{poss_cap} degree was in {field}.",
              "{name} focused on {field} as a student."),
    "employer": ("{pronoun} worked for {employer}.", "{pronoun} was employed by {employer}.",
                 "{name} spent {poss} career at {employer}."),
    "work_city": ("{pronoun} worked in {work_city}.", "{poss_cap} office was in {work_city}.",
                  "{name} lived and worked in {work_city}."),
}


def people(n: int, seed: int) -> list[dict]:
  """``n`` made-up people (attributes drawn from ``seed``)."""
  rng = np.random.RandomState(seed)
  out = []
  for _ in range(n):
    she = bool(rng.randint(2))
    out.append(dict(
        name=f"{FIRST[rng.randint(len(FIRST))]} {LAST[rng.randint(len(LAST))]}",
        pronoun="She" if she else "He", poss="her" if she else "his",
        poss_cap="Her" if she else "His",
        month=MONTHS[rng.randint(12)], day=int(rng.randint(1, 29)),
        year=int(rng.randint(1900, 2000)), city=CITIES[rng.randint(len(CITIES))],
        university=UNIVERSITIES[rng.randint(len(UNIVERSITIES))],
        field=FIELDS[rng.randint(len(FIELDS))], employer=EMPLOYERS[rng.randint(len(EMPLOYERS))],
        work_city=CITIES[rng.randint(len(CITIES))]))
  return out


# A question about each attribute and its answer: the question ends before the answer.
QUESTIONS = {
    "birth": ("When was {name} born?", "{month} {day}, {year}."),
    "city": ("Where was {name} born?", "{city}."),
    "university": ("Where did {name} study?", "{university}."),
    "field": ("What did {name} study?", "{field}."),
    "employer": ("Who employed {name}?", "{employer}."),
    "work_city": ("Where did {name} work?", "{work_city}."),
}


def biography(person: dict, rng: np.random.RandomState,
              attributes: Sequence[str] = tuple(TEMPLATES)) -> str:
  """One rendering of ``person``'s ``attributes``: the birth sentence first (if among them),
  the rest in random order, each with a random paraphrase."""
  unknown = sorted(set(attributes) - set(TEMPLATES))
  if unknown:
    raise ConfigError(f"biography attributes {unknown}: known ones are {list(TEMPLATES)}")
  first = [k for k in attributes if k == "birth"]
  rest = [k for k in attributes if k != "birth"]
  order = first + [rest[i] for i in rng.permutation(len(rest))]
  return " ".join(TEMPLATES[k][rng.randint(len(TEMPLATES[k]))].format(**person) for k in order)


def question(person: dict, attribute: str) -> tuple[str, str]:
  """``(question, answer)`` about ``person``'s ``attribute``."""
  q, a = QUESTIONS[attribute]
  return q.format(**person), a.format(**person)


def biographies(num_people: int, docs_per_person: int, seed: int) -> list[str]:
  rng = np.random.RandomState(seed + 1)
  return [biography(p, rng) for p in people(num_people, seed) for _ in range(docs_per_person)]


FILE_PATTERNS = ("**/*.txt", "**/*.md")


def files(directory, eval_fraction: float,
          patterns: Sequence[str] = FILE_PATTERNS) -> tuple[list[str], list[str]]:
  """``(train, eval)`` documents: one per file under ``directory`` matching any of the glob
  ``patterns`` (relative to ``directory``; ``**`` for any depth)."""
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise ConfigError(f"corpus.directory={str(directory)!r} is not a directory")
  paths = sorted({p for pattern in patterns for p in directory.glob(pattern) if p.is_file()})
  if not paths:
    raise ConfigError(f"corpus.directory={str(directory)!r} holds no file matching "
                      f"corpus.patterns={tuple(patterns)}")
  docs = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
  n_eval = max(1, int(round(len(docs) * eval_fraction))) if len(docs) > 1 else 0
  return docs[:len(docs) - n_eval], docs[len(docs) - n_eval:] or docs[-1:]


def pack(docs: Sequence[Sequence[int]], seq_len: int, eos_id: int) -> np.ndarray:
  """Rows ``[N, seq_len + 1]`` of the documents joined by ``eos_id``."""
  stream = np.fromiter((t for d in docs for t in (*d, eos_id)), dtype=np.int32)
  rows = len(stream) // (seq_len + 1)
  if rows == 0:
    raise ConfigError(f"the corpus has {len(stream)} tokens, fewer than one sequence of "
                      f"seq_len + 1 = {seq_len + 1}: use a larger corpus or a smaller seq_len")
  return stream[:rows * (seq_len + 1)].reshape(rows, seq_len + 1)
