"""The Python tutorial as a textbook: its 16 chapters in order, their prose, and questions
made from them automatically, each graded by an exact answer.

The sources are the reStructuredText of "The Python Tutorial" (PSF license), found in a
directory given as an argument, else ``$METALEARN_PYTHON_TUTORIAL_DIR`` (the repository's
``shared/data/python_tutorial``; its README says whence). Two kinds of question:

* **Examples** (``What does this print?``): the chapter's interactive examples (``>>>``
  prompts and the output shown after them, parsed with :mod:`doctest`). Each is *executed*, in
  order, in one namespace per chapter (what a reader typing them in gets), in a child
  interpreter whose working directory is a temporary one, with stdin empty and two seconds per
  example; an example is kept only when what it prints equals the output the tutorial shows
  (doctest's comparison, whitespace-normalised): the answer is graded by execution, not copied
  from the text. Examples that wait for input, loop forever, print addresses or depend on the
  platform are left out, counted in :attr:`Chapter.unverified`.
* **Cloze** (``Fill in the blank``): a prose sentence with one inline literal (````x````) of at
  most ``MAX_ANSWER`` characters replaced by ``___``; the answer is the literal. Sentences of
  ``6..60`` words, one question per (sentence, literal).

``read(directory)`` returns :class:`Chapter` s with ``text`` (the prose, markup removed:
headings, directives and code blocks out, roles and inline markup to plain words), the
verified examples and the cloze questions, as :class:`metalearn.lm.biography_book.QA` so the
biography learners' row layout and metrics apply unchanged.
"""

import dataclasses
import doctest
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

from metalearn.lm.biography_book import QA
from metalearn.registry import ConfigError

ENV = "METALEARN_PYTHON_TUTORIAL_DIR"
CHAPTERS = ("appetite", "interpreter", "introduction", "controlflow", "datastructures",
            "modules", "inputoutput", "errors", "classes", "stdlib", "stdlib2", "venv",
            "whatnow", "interactive", "floatingpoint", "appendix")  # index.rst's toctree
MAX_ANSWER = 24
EXAMPLE_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Chapter:
  """One chapter.

  Attributes:
    name: its file's stem (``"introduction"``).
    title: its heading.
    text: its prose as plain text (see the module docstring).
    examples: its verified examples as questions (``"What does this print?\\n>>> 2 + 2"``,
      answer ``"4"``).
    cloze: its fill-in-the-blank questions.
    unverified: its examples whose execution did not print what the tutorial shows.
  """
  name: str
  title: str
  text: str
  examples: tuple[QA, ...]
  cloze: tuple[QA, ...]
  unverified: int

  @property
  def qa(self) -> tuple[QA, ...]:
    return self.examples + self.cloze


def find(directory: str = "") -> pathlib.Path:
  """The tutorial's directory: ``directory``, else ``$METALEARN_PYTHON_TUTORIAL_DIR``."""
  path = pathlib.Path(directory or os.environ.get(ENV, ""))
  if not str(path) or str(path) == "." or not (path / "index.rst.txt").exists():
    raise FileNotFoundError(
        f"the Python tutorial's sources are not in {str(path) or '(no directory given)'!r}: "
        f"give its directory (the repository's shared/data/python_tutorial) or set ${ENV}")
  return path


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def _role_text(inner: str) -> str:
  """What a role shows: ``Title <target>`` shows the title; ``~mod.func`` the last name."""
  titled = re.fullmatch(r"(.+?)\s*<[^<>]+>", inner)
  if titled:
    return titled.group(1)
  return inner.split(".")[-1].lstrip("!") if inner.startswith("~") else inner.lstrip("!")


def plain(line: str) -> str:
  """Inline markup to plain words: roles (``:func:`len``` -> ``len``), literals, emphasis,
  link targets."""
  line = _ROLE.sub(lambda m: _role_text(m.group(1)), line)
  line = _LITERAL.sub(r"\1", line)
  line = re.sub(r"\*\*?([^*]+)\*\*?", r"\1", line)
  return re.sub(r"`([^`<]+?)(?: <[^>]+>)?`_+", r"\1", line)


def prose(source: str) -> tuple[str, str, list[str]]:
  """``(title, text, raw paragraphs)``: the heading, the plain prose, and the prose's
  paragraphs with their markup (for cloze questions)."""
  lines = source.splitlines()
  title, paragraphs, current, skip_indent = "", [], [], None
  for i, line in enumerate(lines):
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if skip_indent is not None:  # inside a directive's or a code block's indented body
      if not stripped or indent > skip_indent:
        continue
      skip_indent = None
    if re.fullmatch(r"([*=\-^~#\"'])\1{3,}", stripped):  # a heading's rule
      if current:
        paragraphs.append(" ".join(current))
        current = []
      continue
    nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
    if stripped and re.fullmatch(r"([*=\-^~#\"'])\1{3,}", nxt):  # a heading's text
      title = title or stripped
      continue
    if stripped.startswith(".. ") or stripped.startswith(">>>"):
      skip_indent = indent
      if current:
        paragraphs.append(" ".join(current))
        current = []
      continue
    if not stripped:
      if current:
        paragraphs.append(" ".join(current))
        current = []
      continue
    if indent > 0 and not current:  # an indented block not opened by '::' (a quote, a list)
      pass
    current.append(stripped)
    if stripped.endswith("::"):  # a literal block follows
      paragraphs.append(" ".join(current))
      current = []
      skip_indent = indent
  if current:
    paragraphs.append(" ".join(current))
  text = "\n\n".join(plain(p).replace("::", ":") for p in paragraphs)
  return title, text, paragraphs


def cloze_questions(paragraphs: list[str]) -> list[QA]:
  """Fill-in-the-blank questions from the paragraphs' inline literals (the module
  docstring)."""
  out = []
  for paragraph in paragraphs:
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", paragraph):
      words = len(sentence.split())
      if not 6 <= words <= 60 or not sentence.rstrip().endswith((".", "!", "?")):
        continue
      for m in _LITERAL.finditer(sentence):
        answer = m.group(1)
        if len(answer) > MAX_ANSWER or "\n" in answer:
          continue
        blanked = plain(sentence[:m.start()] + "___" + sentence[m.end():]).replace("::", ":")
        out.append(QA(person="", attribute="cloze",
                      question=f"Fill in the blank: {blanked} Answer:", answer=answer))
  return out


_RUNNER = r'''
import contextlib, doctest, io, json, signal, sys, traceback
examples = json.load(sys.stdin)
sys.stdin = io.StringIO("")
class Timeout(BaseException):
  pass
def alarm(signum, frame):
  raise Timeout()
signal.signal(signal.SIGALRM, alarm)
checker = doctest.OutputChecker()
flags = doctest.NORMALIZE_WHITESPACE
globs = {"__name__": "__main__"}
results = []
for source, want, exc_msg, seconds in examples:
  out = io.StringIO()
  ok = False
  try:
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
      with contextlib.redirect_stdout(out):
        exec(compile(source, "<tutorial>", "single"), globs)
    finally:
      signal.setitimer(signal.ITIMER_REAL, 0)
    ok = exc_msg is None and checker.check_output(want, out.getvalue(), flags)
  except Timeout:
    ok = False
  except BaseException as e:
    if exc_msg is not None:
      got = traceback.format_exception_only(type(e), e)[-1]
      ok = checker.check_output(exc_msg, got, flags)
  results.append(bool(ok))
json.dump(results, sys.__stdout__)
'''


def verify(examples: list[doctest.Example], seconds: float = EXAMPLE_SECONDS) -> list[bool]:
  """Whether each example, run in order in one namespace in a child interpreter (a temporary
  working directory, empty stdin, ``seconds`` each), prints the output the tutorial shows (or
  raises the exception it shows)."""
  if not examples:
    return []
  payload = json.dumps([(e.source, e.want, e.exc_msg, seconds) for e in examples])
  with tempfile.TemporaryDirectory() as cwd:
    done = subprocess.run([sys.executable, "-c", _RUNNER], input=payload, capture_output=True,
                          text=True, cwd=cwd, timeout=30 + seconds * len(examples),
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"})
  if done.returncode != 0:
    raise RuntimeError(f"the examples' interpreter failed: {done.stderr[-2000:]}")
  return json.loads(done.stdout)


def _example_question(e: doctest.Example) -> QA:
  lines = e.source.rstrip("\n").split("\n")
  shown = "\n".join((">>> " if i == 0 else "... ") + line for i, line in enumerate(lines))
  return QA(person="", attribute="example", question=f"What does this print?\n{shown}\n",
            answer=e.want.rstrip("\n"))


def read_chapter(path: pathlib.Path) -> Chapter:
  """One chapter file (see the module docstring)."""
  source = path.read_text(encoding="utf-8")
  title, text, paragraphs = prose(source)
  examples = [e for e in doctest.DocTestParser().get_examples(source)]
  ok = verify(examples)
  # an example is a question when it prints something, as shown (assignments print nothing:
  # they run, for the examples after them, but ask nothing)
  kept = tuple(_example_question(e) for e, good in zip(examples, ok)
               if good and e.want.strip() and e.exc_msg is None)
  return Chapter(path.name.split(".")[0], title, text, kept,
                 tuple(cloze_questions(paragraphs)), unverified=ok.count(False))


def read(directory: str = "") -> list[Chapter]:
  """The 16 chapters in the tutorial's order."""
  root = find(directory)
  missing = [c for c in CHAPTERS if not (root / f"{c}.rst.txt").exists()]
  if missing:
    raise ConfigError(f"{root} lacks chapters {missing}: the tutorial's sources are "
                      "incomplete (see its README.md for whence)")
  return [read_chapter(root / f"{c}.rst.txt") for c in CHAPTERS]
