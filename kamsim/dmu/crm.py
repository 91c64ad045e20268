"""Read decision units from a CRM contact export (CSV), with located errors.

Columns (header row, names case-insensitive, in any order; extra columns are ignored):

========== ======== ==========================================================================
column     required meaning
========== ======== ==========================================================================
account_id yes      the account the person belongs to (matches the portfolio's account id)
person     yes      the person's id, unique within the account (at most 64 characters)
role       yes      a role name of the stakeholder rules
reports_to yes      the id of the person's boss in the same account, or blank
attitude   yes      enemy, non_supporter, neutral, supporter, mentor (blank = neutral)
coverage   yes      none, brief, multiple, in_depth (blank = none)
influence  no       0..1 (blank = the role's influence)
held_by    no       account_manager, executive, specialist (blank = the role's holder)
months_in_post no   whole months >= 0 (blank = 24)
========== ======== ==========================================================================

A column name may appear only once (compared like the labels below).
Labels are matched case-insensitively and ``-`` or a space count as ``_`` ("Non-Supporter").
Every bad cell is reported at ``file:line:column`` (the CSV line, the 1-based column index);
all problems of the file are raised together as one :class:`InputError` (past
:data:`~kamsim.errors.MAX_LISTED`, the rest counted in one line, as for an accounts CSV).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from kamsim.csvtext import check_csv_head, csv_lines, decode_problem, norm_name
from kamsim.errors import InputError, Location, Problem, capped, did_you_mean
from kamsim.spec.models import (
    ATTITUDES,
    COVERAGE_LEVELS,
    HOLDERS,
    ExplicitUnit,
    StakeholderPerson,
    unit_checks,
)

__all__ = ["read_contacts_csv", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS"]

REQUIRED_COLUMNS = ("account_id", "person", "role", "reports_to", "attitude", "coverage")
OPTIONAL_COLUMNS = ("influence", "held_by", "months_in_post")


def _choice(value: str, known: Sequence[str], what: str, loc: Location,
            problems: list[Problem]) -> str | None:
    v = norm_name(value)
    if v in known:
        return v
    hint = did_you_mean(v, known)
    problems.append(Problem(loc, f"unknown {what} {value.strip()!r}",
                            f"{hint}one of: {', '.join(known)}"))
    return None


def _number(value: str, what: str, lo: float, hi: float | None, loc: Location,
            problems: list[Problem]) -> float | None:
    try:
        x = float(value)
    except ValueError:
        x = float("nan")
    if not (x >= lo and (hi is None or x <= hi)):
        rng = f"a number from {lo:g} to {hi:g}" if hi is not None else f"a number >= {lo:g}"
        problems.append(Problem(loc, f"bad {what} {value.strip()!r}", rng))
        return None
    return x


def read_contacts_csv(path: str | Path, role_names: Sequence[str] | None, *,
                      display: str | None = None, accounts: Collection[str] | None = None,
                      on_read: Callable[[bytes], None] | None = None) -> dict[str, ExplicitUnit]:
    """The explicit decision units in a CRM export, keyed by account id (file order).

    The result feeds ``build_units(..., explicit=...)``. Raises InputError listing every bad
    cell, missing column, repeated person, dangling ``reports_to`` and reporting cycle of the
    file at once.
    ``role_names`` None accepts any role: ``kamsim validate contacts.csv`` checks the file
    on its own, without the stakeholder rules a scenario would pair it with. ``accounts``:
    the starting portfolio's ids, if known; a row of another account is a problem at its
    ``account_id`` (its unit would be dropped, and the template shown for the account meant).
    The file is read once; ``on_read`` is given the bytes read (that are parsed), as soon as
    they are: the scenario's loader records their hash with the run.
    """
    where = display if display is not None else str(path)
    data = b""
    try:
        data = Path(path).read_bytes()
        if on_read is not None:
            on_read(data)
        check_csv_head(data, where)  # a workbook, ';' or tabs between fields: one line
        with csv_lines(data) as fh:
            rows = _read_rows(csv.reader(fh))
    except UnicodeDecodeError:
        raise InputError([decode_problem(data, where)]) from None
    except (OSError, csv.Error) as err:
        raise InputError([Problem(Location(where), f"cannot read the contact file: {err}")]
                         ) from None
    problems: list[Problem] = []
    if not rows:
        raise InputError([Problem(Location(where, 1, 1), "the file is empty",
                                  f"a header row with: {', '.join(REQUIRED_COLUMNS)}")])
    head_line, header = rows[0]
    col: dict[str, int] = {}
    ambiguous: set[str] = set()
    for i, name in enumerate(header):
        key = norm_name(name)
        if key and key in col:  # which of the two is meant cannot be told: refuse both
            ambiguous.add(key)
            problems.append(Problem(Location(where, head_line, i + 1),
                                    f"column {name.strip()!r} repeats (first in column "
                                    f"{col[key] + 1})", "each column name once"))
        col.setdefault(key, i)
    for name in REQUIRED_COLUMNS:
        if name not in col:
            hint = did_you_mean(name, [norm_name(h) for h in header])
            problems.append(Problem(Location(where, head_line, 1), f"missing column {name!r}",
                                    f"{hint}columns: {', '.join(REQUIRED_COLUMNS)}"))
    if ambiguous & {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS}:
        raise InputError(problems)  # every row's check would be a guess at which column counts
    roles = tuple(role_names) if role_names is not None else None
    variants: dict[str, str] = {}  # the portfolio's ids by _id_key, made at the first stranger
    units: dict[str, list[tuple[int, StakeholderPerson | None, dict[str, object]]]] = {}
    for line, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            problems.append(Problem(Location(where, line, min(len(cells), len(header)) + 1),
                                    f"the row has {len(cells)} fields",
                                    f"{len(header)}, like the header"))
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            return cells[col[name]].strip() if name in col else ""

        def loc(name: str, line: int = line) -> Location:
            return Location(where, line, col.get(name, 0) + 1)

        before = len(problems)
        acc, pid = cell("account_id"), cell("person")
        for name, value in (("account_id", acc), ("person", pid), ("role", cell("role"))):
            if name in col and not value:
                problems.append(Problem(loc(name), f"empty {name}", "a value"))
        if acc and accounts is not None and acc not in accounts:
            problems.append(_stranger(acc, accounts, loc("account_id"), variants))
        if len(pid) > 64:
            problems.append(Problem(loc("person"), "person id is too long", "<= 64 characters"))
        role = (None if not cell("role") else norm_name(cell("role")) if roles is None
                else _choice(cell("role"), roles, "role", loc("role"), problems))
        att = _choice(cell("attitude"), ATTITUDES, "attitude", loc("attitude"), problems) \
            if cell("attitude") else "neutral"
        cov = _choice(cell("coverage"), COVERAGE_LEVELS, "coverage", loc("coverage"),
                      problems) if cell("coverage") else "none"
        infl = _number(cell("influence"), "influence", 0.0, 1.0, loc("influence"), problems) \
            if cell("influence") else None
        held = _choice(cell("held_by"), HOLDERS, "held_by", loc("held_by"), problems) \
            if cell("held_by") else None
        months = _number(cell("months_in_post"), "months_in_post", 0.0, None,
                         loc("months_in_post"), problems) if cell("months_in_post") else 24.0
        person = None
        if len(problems) == before and role is not None and acc and pid:
            person = StakeholderPerson(
                id=pid, role=role, influence=infl, attitude=att, coverage=cov,
                held_by=held, months_in_post=round(months or 0.0),
                reports_to=cell("reports_to") or None)
        units.setdefault(acc, []).append(
            (line, person, {"id": pid, "reports_to": cell("reports_to")}))

    out: dict[str, ExplicitUnit] = {}
    column = {"id": "person", "reports_to": "reports_to"}
    for acc, people in units.items():
        # a repeated id is reported here, at its row ("entry N" of the shared check would
        # count the account's rows, not the file's lines); the rest of the account goes
        # through the same checks as a map written in YAML (unit_checks: reports_to names
        # another person, no reporting cycle), each problem placed at its row's cell
        seen: dict[str, int] = {}
        for line, _, p in people:
            pid = str(p["id"])
            if pid and pid in seen:
                problems.append(Problem(Location(where, line, col.get("person", 0) + 1),
                                        f"person {pid!r} repeats in account {acc!r}",
                                        "one row per person"))
            seen.setdefault(pid, line)
        rows_of = [(line, p) for line, _, p in people if seen.get(str(p["id"])) == line]
        shared = {"people": [{"id": p["id"] or None, "reports_to": p["reports_to"] or None}
                             for _, p in rows_of]}
        for placed in unit_checks(None, acc, shared):
            row, field = placed.path[1], placed.path[2]
            assert isinstance(row, int) and isinstance(field, str)
            problems.append(Problem(Location(where, rows_of[row][0], col.get(column[field], 0) + 1),
                                    str(placed), placed.expected))
        if not problems:
            out[acc] = ExplicitUnit(people=[p for _, p, _ in people if p is not None])
    if problems:
        raise InputError(capped(problems))
    return out


def _id_key(text: str) -> str:
    return "".join(text.split()).lower()


def _stranger(acc: str, accounts: Collection[str], where: Location,
              variants: dict[str, str]) -> Problem:
    """The problem of a row whose account is not in the portfolio, with the portfolio's id
    that differs from it only in case or spaces, if any (ids are compared exactly: C1005
    and c1005 may be two accounts). ``variants`` is filled on the first call."""
    if not variants:
        variants.update((_id_key(str(a)), str(a)) for a in accounts)
    near = variants.get(_id_key(acc))
    hint = f"did you mean {near!r}? " if near else ""
    return Problem(where, f"account {acc!r} is not in the portfolio",
                   f"{hint}the id of a starting account, as the portfolio spells it")


def _read_rows(reader: Any) -> list[tuple[int, list[str]]]:
    """Rows with the CSV line each starts on (a quoted field may span lines)."""
    rows = []
    last = 0
    for cells in reader:
        rows.append((last + 1, cells))
        last = reader.line_num
    return rows
