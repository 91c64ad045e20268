"""Typed errors. Library code raises these; only the CLI turns them into text and exit codes.

An input problem is always located: ``path:line:col: what is wrong (what was expected)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Location", "Problem", "Omitted", "capped", "MAX_LISTED", "KamsimError", "InputError", "RunError",
           "KamsimWarning", "did_you_mean"]


def did_you_mean(value: str, names: Iterable[str]) -> str:
    """The start of a problem's "expected" text for ``value`` when one of ``names`` is close
    to it (``"did you mean 'tiering'? "``), else ``""``: every message words a near miss the
    same way, before the list of what is known."""
    import difflib  # (wanted only when there is a problem to word)

    near = difflib.get_close_matches(value, list(names), n=1)
    return f"did you mean {near[0]!r}? " if near else ""


_NUMBER = re.compile(r"(\d+)")


def _natural(text: str) -> tuple[str | int, ...]:
    """A key that orders ``text`` with its numbers read as numbers: ``--set[2]`` before
    ``--set[10]``, ``people[9]`` before ``people[10]``. (The split alternates text and
    digits, so two keys compare text with text and number with number.)"""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_NUMBER.split(text)))


@dataclass(frozen=True, order=True)
class Location:
    """A place in a user file; line and col are 1-based (col counts characters)."""

    path: str
    line: int = 0
    col: int = 0

    def shifted(self, chars: int) -> Location:
        """The same line, ``chars`` characters further right (for a column inside a string)."""
        return Location(self.path, self.line, self.col + chars)

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one place in one file."""

    loc: Location
    message: str
    expected: str | None = None

    def format(self) -> str:
        tail = f" ({self.expected})" if self.expected else ""
        return f"{self.loc}: {self.message}{tail}"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class Omitted(Problem):
    """Stands for ``count`` problems of a file that are not listed (a CSV with thousands of bad
    cells would bury the screen), located at the first of them: the CLI's count says how many
    there are in all instead of only how many were shown."""

    count: int = 0


#: how many problems of one file are listed: a CSV's readers (accounts, contacts) share it,
#: so that a file with thousands of bad cells reads the same whichever it is
MAX_LISTED = 200


def capped(problems: list[Problem], limit: int = MAX_LISTED) -> list[Problem]:
    """The first ``limit`` of ``problems``, and an :class:`Omitted` for the rest."""
    if len(problems) <= limit:
        return problems
    rest = len(problems) - limit
    return [*problems[:limit], Omitted(
        problems[limit].loc, f"{rest} more problem{'s' if rest != 1 else ''} from here on "
        f"{'are' if rest != 1 else 'is'} not listed", "fix the ones above and check again",
        count=rest)]


class KamsimError(Exception):
    """Base class of every error kamsim raises on purpose."""


class InputError(KamsimError):
    """One or more problems in user input. ``problems`` holds all of them, in file order:
    by path (its numbers as numbers: ``--set[2]`` before ``--set[10]``), then line, column."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = sorted(
            problems, key=lambda p: (_natural(p.loc.path), p.loc.path, p.loc.line, p.loc.col,
                                     p.message)
        )
        if not self.problems:
            raise ValueError("InputError needs at least one problem")
        # the problems are its args, so that ``type(e)(*e.args)`` rebuilds it: SimPy re-raises
        # an exception from a process that way (a problem found at a re-tiering mid-run), and
        # pickling does too (a worker process or a Dask worker sends it whole)
        super().__init__(self.problems)

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems)


class RunError(KamsimError):
    """A run could not be done for a reason that is not a located input problem
    (an unknown run id, an unwritable output folder, a corrupt store)."""


class KamsimWarning(UserWarning):
    """Something the user should know about a run that still went ahead (the CLI prints it
    as one line, ``warning: ...``)."""
