"""The biography textbook: made-up people, their biographies with or without knowledge
augmentation, a question-answer pair per fact, and chapters of disjoint people (bioS of Physics
of Language Models 3.1, Allen-Zhu and Li 2023, generated offline from a seed).

A person has a unique full name (first, middle and last names drawn without replacement from
the lists below: generated here, no data package) and six attributes: birth date, birth city,
university, major, employer, and the employer's city (the employer's headquarters, as in the
paper). A biography has one sentence per attribute, each from one of several templates. How
they are written is the experiment's variable (:class:`Augmentation`):

* ``multiplicity``: biographies per person (the paper's ``multi5``: 5), each drawing its
  templates afresh; 1 is ``bioS single``: one biography, its templates drawn once per person.
* ``permute``: sentences in a random order in each biography (else the attributes' order).
* ``fullname``: the full name in every sentence (else only the first; pronouns after).

A person's questions are one per attribute (``"What is the birth city of Anya Briar Forger?"``,
answer ``"Princeton."``); the answer is what the model must produce after the question and a
space. :func:`book` groups people into chapters of disjoint people; with ``prerequisites``,
each person of a later chapter has a mentor from an earlier one (a seventh sentence, and two
questions: who the mentor was, and where the mentor was born, whose answer is only in the
mentor's chapter).

Everything is a function of the seed: the same arguments give the same people, texts and
questions.
"""

import dataclasses
from typing import Sequence

import numpy as np

from metalearn.registry import ConfigError

FIRST = ("Anya", "Bruno", "Celia", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Kamala", "Lars", "Mei", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Soren",
         "Tamsin", "Umar", "Vera", "Wendell", "Ximena", "Yusuf", "Zelda", "Amara", "Bastian",
         "Clio", "Dario", "Esme", "Felix", "Gita", "Hugo", "Ilse", "Jasper", "Kira", "Leon",
         "Maren", "Nico")
MIDDLE = ("Briar", "Cole", "Dale", "Ellis", "Faye", "Gray", "Hale", "Ives", "Jude", "Kit",
          "Lane", "Mae", "Noel", "Oak", "Pax", "Quinn", "Reed", "Sage", "Tate", "Vale",
          "West", "Wren", "York", "Zane", "Ash", "Bay", "Clay", "Drew", "Eve", "Fern",
          "Glen", "Hart", "Iris", "Jay", "Kai", "Lark", "Moss", "Nell", "Rue", "Sky")
LAST = ("Forger", "Abbott", "Bramley", "Castell", "Dunmore", "Everly", "Fairbank", "Garrow",
        "Hollis", "Ingram", "Jessop", "Kettering", "Lindqvist", "Marlow", "Northcott",
        "Oduya", "Pemberton", "Quarry", "Ravel", "Stanhope", "Thackery", "Underhill",
        "Vasquez", "Whitlock", "Yardley", "Zabini", "Ashdown", "Blackwood", "Cromer",
        "Davenport", "Eastwick", "Fenwick", "Gladstone", "Hawthorne", "Ivanova", "Jarrow",
        "Kingsley", "Lockhart", "Montague", "Nakamura")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
CITIES = ("Princeton", "Lisbon", "Kyoto", "Nairobi", "Toronto", "Prague", "Austin", "Seoul",
          "Dublin", "Lima", "Oslo", "Cairo", "Porto", "Denver", "Milan", "Warsaw", "Athens",
          "Madras", "Boston", "Zurich", "Vienna", "Seattle", "Berlin", "Paris")
UNIVERSITIES = ("MIT", "Stanford", "Oxford", "Cambridge", "Caltech", "Princeton University",
                "ETH Zurich", "the Sorbonne", "Berkeley", "Harvard", "Kyoto University",
                "Edinburgh", "Delft", "Columbia", "Yale", "McGill", "Tsinghua", "Cornell")
MAJORS = ("Mathematics", "Physics", "Chemistry", "Computer Science", "Biology", "Astronomy",
          "Economics", "Linguistics", "Statistics", "Philosophy", "Engineering", "Medicine",
          "History", "Architecture", "Geology", "Music")
# employer -> its headquarters: the employer's city follows from the employer
EMPLOYERS = {"Meta Platforms": "Menlo Park", "Bell Labs": "Murray Hill", "IBM": "Armonk",
             "Xerox PARC": "Palo Alto", "CERN": "Geneva", "NASA": "Washington",
             "DeepMind": "London", "Intel": "Santa Clara", "Siemens": "Munich",
             "Philips": "Amsterdam", "Nokia": "Espoo", "Bosch": "Stuttgart",
             "Airbus": "Toulouse", "Sony": "Tokyo", "Tata": "Mumbai", "Samsung": "Suwon"}

ATTRIBUTES = ("birth_date", "birth_city", "university", "major", "employer", "employer_city")
RELATIONS = ("mentor", "mentor_city")  # with prerequisites: about a person of an earlier chapter

# {S}: the subject (the full name, or a pronoun after the first sentence without ``fullname``);
# {P}: the possessive that opens a sentence (the name's, or the pronoun's); {p}: the pronoun's
# possessive later in a sentence whose subject is already named.
TEMPLATES = {
    "birth_date": ("{S} was born on {birth_date}.", "{S} came into this world on {birth_date}.",
                   "{P} birthday is {birth_date}.", "{S} celebrates {p} birthday on "
                   "{birth_date}.", "{S} was brought into the world on {birth_date}.",
                   "{P} life journey began on {birth_date}."),
    "birth_city": ("{S} was born in {birth_city}.", "{S} spent {p} early years in "
                   "{birth_city}.", "{S} grew up in {birth_city}.", "{P} hometown is "
                   "{birth_city}.", "{S} was raised in {birth_city}.", "{S} came from "
                   "{birth_city}."),
    "university": ("{S} studied at {university}.", "{S} received {p} education at "
                   "{university}.", "{S} graduated from {university}.", "{S} attended "
                   "{university}.", "{S} completed {p} degree at {university}.",
                   "{P} alma mater is {university}."),
    "major": ("{S} majored in {major}.", "{P} field of study was {major}.", "{S} focused on "
              "{major} as a student.", "{S} earned a degree in {major}.", "{S} specialized in "
              "{major}.", "{P} studies centred on {major}."),
    "employer": ("{S} worked for {employer}.", "{S} was employed by {employer}.",
                 "{S} built a career at {employer}.", "{S} joined {employer}.",
                 "{P} employer was {employer}.", "{S} held a job at {employer}."),
    "employer_city": ("{S} worked in {employer_city}.", "{P} office was in {employer_city}.",
                      "{S} commuted to work in {employer_city}.", "{S} was based in "
                      "{employer_city}.", "{P} workplace was in {employer_city}.",
                      "{S} lived and worked in {employer_city}."),
    "mentor": ("{S} was mentored by {mentor}.", "{P} mentor was {mentor}.",
               "{S} learned the trade from {mentor}.", "{S} trained under {mentor}.",
               "{S} was a student of {mentor}.", "{S} was guided by {mentor}."),
}
QUESTIONS = {
    "birth_date": "What is the birth date of {name}?",
    "birth_city": "What is the birth city of {name}?",
    "university": "Which university did {name} study at?",
    "major": "What major did {name} study?",
    "employer": "Which company did {name} work for?",
    "employer_city": "Where did {name} work?",
    "mentor": "Who mentored {name}?",
    "mentor_city": "Where was the mentor of {name} born?",
}


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """How biographies are written (see the module docstring)."""
  multiplicity: int = 1
  permute: bool = False
  fullname: bool = False

  def __post_init__(self):
    if self.multiplicity < 1:
      raise ConfigError(f"augmentation multiplicity={self.multiplicity}: at least 1")


NONE = Augmentation()
FULL = Augmentation(multiplicity=5, permute=True, fullname=True)


@dataclasses.dataclass(frozen=True)
class Person:
  name: str
  she: bool
  facts: dict  # attribute -> its value as written (answers end with '.')
  mentor: "Person | None" = None

  def value(self, attribute: str) -> str:
    if attribute == "mentor":
      return self.mentor.name
    if attribute == "mentor_city":
      return self.mentor.facts["birth_city"]
    return self.facts[attribute]

  @property
  def attributes(self) -> tuple[str, ...]:
    return ATTRIBUTES + (RELATIONS if self.mentor is not None else ())


@dataclasses.dataclass(frozen=True)
class QA:
  person: str
  attribute: str
  question: str
  answer: str  # what follows the question and a space

  @property
  def text(self) -> str:
    return f"{self.question} {self.answer}"


@dataclasses.dataclass(frozen=True)
class Chapter:
  people: tuple[Person, ...]
  biographies: tuple[str, ...]
  qa: tuple[QA, ...]


def people(n: int, seed: int) -> list[Person]:
  """``n`` people with distinct full names (at most ``len(FIRST) * len(MIDDLE) * len(LAST)``)."""
  space = len(FIRST) * len(MIDDLE) * len(LAST)
  if not 1 <= n <= space:
    raise ConfigError(f"{n} people: between 1 and {space} (distinct full names)")
  rng = np.random.RandomState(seed)
  codes = rng.choice(space, n, replace=False)
  employers = list(EMPLOYERS)
  out = []
  for code in codes:
    f, rest = divmod(int(code), len(MIDDLE) * len(LAST))
    m, l = divmod(rest, len(LAST))
    employer = employers[rng.randint(len(employers))]
    facts = dict(
        birth_date=f"{MONTHS[rng.randint(12)]} {rng.randint(1, 29)}, {rng.randint(1900, 2100)}",
        birth_city=CITIES[rng.randint(len(CITIES))],
        university=UNIVERSITIES[rng.randint(len(UNIVERSITIES))],
        major=MAJORS[rng.randint(len(MAJORS))], employer=employer,
        employer_city=EMPLOYERS[employer])
    out.append(Person(f"{FIRST[f]} {MIDDLE[m]} {LAST[l]}", bool(rng.randint(2)), facts))
  return out


def biography(person: Person, templates: dict, order: Sequence[str], fullname: bool) -> str:
  """``person``'s facts in ``order``, each with ``templates[attribute]`` (an index)."""
  sentences = []
  for i, attribute in enumerate(order):
    named = fullname or i == 0
    pronoun, poss = ("she", "her") if person.she else ("he", "his")
    text = TEMPLATES[attribute][templates[attribute]]
    fields = {"mentor": person.mentor.name if person.mentor else ""} | person.facts
    sentences.append(text.format(
        S=person.name if named else pronoun.capitalize(), p=poss,
        P=f"{person.name}'s" if named else poss.capitalize(), **fields))
  return " ".join(sentences)


def biographies(person: Person, augmentation: Augmentation, rng: np.random.RandomState
                ) -> list[str]:
  """``augmentation.multiplicity`` biographies of ``person``."""
  written = [a for a in ATTRIBUTES] + (["mentor"] if person.mentor is not None else [])
  out = []
  for _ in range(augmentation.multiplicity):
    templates = {a: rng.randint(len(TEMPLATES[a])) for a in written}
    order = ([written[i] for i in rng.permutation(len(written))] if augmentation.permute
             else written)
    out.append(biography(person, templates, order, augmentation.fullname))
  return out


def questions(person: Person) -> list[QA]:
  """One question per attribute of ``person`` (relations too, if they have a mentor)."""
  return [QA(person.name, a, QUESTIONS[a].format(name=person.name), person.value(a) + ".")
          for a in person.attributes]


def book(num_chapters: int, people_per_chapter: int, seed: int,
         augmentation: Augmentation = NONE, prerequisites: bool = False) -> list[Chapter]:
  """Chapters of disjoint people. With ``prerequisites``, each person of chapter ``c > 0`` has
  a mentor drawn from chapters ``0..c-1``."""
  if num_chapters < 1 or people_per_chapter < 1:
    raise ConfigError(f"a book of {num_chapters} chapters x {people_per_chapter} people: "
                      "both at least 1")
  everyone = people(num_chapters * people_per_chapter, seed)
  rng = np.random.RandomState(seed + 1)
  chapters = []
  for c in range(num_chapters):
    group = everyone[c * people_per_chapter:(c + 1) * people_per_chapter]
    if prerequisites and c > 0:
      earlier = [p for ch in chapters for p in ch.people]
      group = [dataclasses.replace(p, mentor=earlier[rng.randint(len(earlier))])
               for p in group]
    bios = tuple(b for p in group for b in biographies(p, augmentation, rng))
    chapters.append(Chapter(tuple(group), bios, tuple(q for p in group for q in questions(p))))
  return chapters
