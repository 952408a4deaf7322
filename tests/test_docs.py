"""README.md, docs/ and results/README.md: short, linked correctly, and the commands CI runs."""

import re

from tests.conftest import ROOT

_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_PAGES = [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_is_short():
  assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_of_the_docs_resolves():
  broken = [f"{page.relative_to(ROOT)}: {target}" for page in _PAGES
            for target in _LINK.findall(page.read_text())
            if "://" not in target and not (page.parent / target).exists()]
  assert not broken, broken


def test_ci_runs_the_test_command_readme_gives():
  readme = (ROOT / "README.md").read_text()
  ci = (ROOT / ".ci" / "run").read_text()
  command = ('pip install torch==2.13.0 -e ".[test,parity]" && '
             'python -m pytest -q -n 2 tests')
  assert command in readme and command in ci
