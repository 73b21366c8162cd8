"""The code blocks of README.md and docs/*.md, as a reader copies them.

A fenced block's language says what it is: ``sh`` commands to run, ``console`` a
transcript (``$ command`` lines, each followed by the output it prints, ``...``
standing for any text), ``python`` a program (or, when its first line is a comment
naming a ``.py`` file, that file's content), ``js`` a browser's script (run by Node,
whose WebSocket is the browser's), ``yaml`` a configuration file, ``json`` a
message body, ``text`` anything else (a synopsis, a listing or a picture).  The test
that runs them is ``tests/e2e/test_docs.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Snippet", "Step", "commands", "documents", "extract", "matches", "transcript"]

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```(\S*)\s*$")
_FILE_COMMENT = re.compile(r"^# ([\w./-]+\.py)$")


@dataclass(frozen=True)
class Snippet:
    """One fenced block: where it is, its language and its text."""

    document: str  # relative to the repository: README.md, docs/api.md
    line: int  # of the opening fence, counted from 1
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")

    @property
    def file_name(self) -> str | None:
        """For a Python block that is a file (first line ``# myapp/tasks.py``), its path."""
        match = _FILE_COMMENT.match(self.first_line) if self.lang == "python" else None
        return match.group(1) if match else None

    def startswith(self, text: str) -> bool:
        return self.first_line.startswith(text)


@dataclass(frozen=True)
class Step:
    """A command of a ``console`` transcript and the output it shows."""

    command: str
    output: tuple[str, ...]


def documents() -> list[str]:
    """README.md, then docs/*.md in name order."""
    return ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]


def extract(document: str) -> list[Snippet]:
    """Every fenced block of ``document``, in order."""
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    start: int | None = None
    lang = ""
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line)
        if match is None:
            continue
        if start is None:
            start, lang = number, match.group(1)
        else:
            found.append(Snippet(document, start, lang, "\n".join(lines[start : number - 1])))
            start = None
    assert start is None, f"{document}:{start}: a code block is never closed"
    return found


def commands(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank and comment-only
    lines left out (a comment after a command stays: the shell ignores it)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def transcript(text: str) -> list[Step]:
    """The ``$ command`` lines of a console block, each with the lines after it."""
    steps: list[Step] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:].strip(), ()))
        elif steps:
            steps[-1] = Step(steps[-1].command, (*steps[-1].output, line))
        elif line.strip():
            raise AssertionError(f"output before the first command: {line!r}")
    return steps


def matches(shown: str, printed: str) -> bool:
    """Whether one line of printed output is what the documentation shows, where
    ``...`` in the documentation stands for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, printed.rstrip()) is not None
