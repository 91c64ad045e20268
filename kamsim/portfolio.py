"""Portfolios: the accounts a scenario plays with, as columns of numpy arrays.

A portfolio is either generated from the distributions declared in the scenario (wallets are
heavy-tailed: lognormal or Pareto) or imported from a CRM export (CSV) with a column mapping.
Bad rows of an import are reported as ``file:row:column``; a repeated column name or a row
with more or fewer fields than the header is refused, never guessed at.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kamsim.csvtext import check_csv_head, csv_lines, decode_problem, norm_name
from kamsim.errors import InputError, Location, Problem, capped, did_you_mean
from kamsim.fields import PORTFOLIO_FIELDS
from kamsim.spec.models import Distribution, PortfolioGenerate, PortfolioImport

__all__ = ["Accounts", "ImportedTable", "generate_portfolio", "generate_labels",
           "generate_numbers", "starting_parts", "numbered_ids", "numbered_id",
           "numbered_index", "read_portfolio_csv",
           "accounts_from_import", "build_portfolio", "sample", "starting_ids", "fingerprint"]

#: number fields that are drawn or imported; revenue and gross_profit are derived
DRAWN_FIELDS = [k for k, (t, _) in PORTFOLIO_FIELDS.items()
                if t == "number" and k not in ("revenue", "gross_profit")]
_SIGNED_FIELDS = {"growth_potential"}  # a shrinking wallet is a real forecast
_UNIT_FIELDS = {"share", "margin", "loyalty", "purchase_regularity", "influence", "feedback",
                "payment_risk", "strategic_fit", "price_sensitivity"}


@dataclass
class Accounts:
    """The starting portfolio: one entry per account in every array."""

    account_id: np.ndarray  # str
    numbers: dict[str, np.ndarray]  # float64 arrays for DRAWN_FIELDS
    segment: np.ndarray  # str
    industry: np.ndarray  # str

    @property
    def n(self) -> int:
        return int(self.account_id.shape[0])

    def env(self) -> dict[str, np.ndarray]:
        """The portfolio fields as an expression environment (derived fields included)."""
        env = dict(self.numbers)
        env["revenue"] = self.numbers["wallet"] * self.numbers["share"]
        env["gross_profit"] = env["revenue"] * self.numbers["margin"]
        env["segment"] = self.segment
        env["industry"] = self.industry
        return env

    def take(self, idx: np.ndarray | slice) -> Accounts:
        return Accounts(self.account_id[idx], {k: v[idx] for k, v in self.numbers.items()},
                        self.segment[idx], self.industry[idx])


def fingerprint(accounts: Accounts, n: int | None = None) -> str:
    """A short hash of the first ``n`` accounts (default: all) in slot order: ids, every
    drawn or imported number (bit for bit), segment and industry.

    Two runs are paired only when they start from the same portfolio, and the same ids
    are not enough: a generated portfolio has ids A0001... whatever its seed. Slot order
    counts, as an account's random stream follows its slot. Stored with a run's summary
    (``portfolio_fingerprint``) so that a stored run can be paired with a fresh one."""
    import hashlib

    k = accounts.n if n is None else n
    h = hashlib.blake2b(digest_size=8)
    for col in (accounts.account_id, accounts.segment, accounts.industry):
        h.update(_joined(col[:k]))
        h.update(b"\x1e")
    for name in sorted(accounts.numbers):
        h.update(name.encode())
        h.update(np.ascontiguousarray(accounts.numbers[name][:k], dtype="<f8").tobytes())
    return h.hexdigest()


def _joined(col: np.ndarray) -> bytes:
    """The text of each value (``str``), joined by \x1f, as UTF-8: the values' own text
    when they are text (a million accounts' ids in ~10 ms, where a ``str`` call each took
    ~40), else each one's ``str``."""
    values = col.tolist()
    try:
        text = "\x1f".join(values)
    except TypeError:  # (a value that is not text: a number read from a file, say)
        text = "\x1f".join(map(str, values))
    return text.encode()


def sample(dist: Distribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of one declared distribution (float64, a fresh array).

    The arithmetic is done in place on the drawn array (the same operations on the same
    numbers: ``a * x`` and ``x * a`` are the same float); a 1M-account portfolio draws 26
    fields, and every temporary was another fresh 8 MB."""
    if dist.dist == "lognormal":
        assert dist.median is not None and dist.sigma is not None
        out = rng.standard_normal(n)
        out *= dist.sigma
        np.exp(out, out=out)
        out *= dist.median
    elif dist.dist == "pareto":
        assert dist.alpha is not None and dist.minimum is not None
        out = rng.pareto(dist.alpha, n)
        out += 1.0
        out *= dist.minimum
    elif dist.dist == "uniform":
        assert dist.minimum is not None and dist.maximum is not None
        out = rng.uniform(dist.minimum, dist.maximum, n)
    elif dist.dist == "beta":
        assert dist.alpha is not None and dist.beta is not None
        out = rng.beta(dist.alpha, dist.beta, n)
    elif dist.dist == "normal":
        assert dist.mean is not None
        out = rng.standard_normal(n)
        out *= dist.sigma or 0.0
        out += dist.mean
    else:
        out = np.full(n, float(dist.value or 0.0))
    out = np.asarray(out, dtype=np.float64)
    if dist.clip is not None:
        np.clip(out, dist.clip[0], dist.clip[1], out=out)
    return out


def _categorical(mix: Mapping[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    names = np.array(list(mix), dtype=object)
    p = np.array(list(mix.values()), dtype=np.float64)
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def numbered_id(prefix: str, i: int, n: int) -> str:
    """The id of account ``i`` (1..n) of ``n`` numbered ones: ``prefix`` and ``i`` zero-padded
    to the digits of ``n`` (A0001 of 2000). The one place this format is written:
    :func:`numbered_ids` writes the same for every i, and :func:`numbered_index` reads it."""
    return f"{prefix}{i:0{len(str(n))}d}"


def numbered_index(prefix: str, n: int, text: str) -> int | None:
    """The ``i`` whose :func:`numbered_id` is ``text``, None if ``text`` is no id of the
    ``n`` numbered accounts: the ids of a generated portfolio are known from its size,
    without drawing it (``A01`` is not an id of 2000 accounts, nor ``A2001``)."""
    digits = text[len(prefix):]
    if not (text.startswith(prefix) and digits.isascii() and digits.isdigit()):
        return None
    i = int(digits)
    return i if 1 <= i <= n and numbered_id(prefix, i, n) == text else None


def numbered_ids(prefix: str, n: int) -> np.ndarray:
    """The object array of :func:`numbered_id` for i = 1..n.

    Written digit by digit into a fixed-width str array, then made Python strs in one
    conversion: a format call per id cost 0.3 s per 1M accounts, this ~0.1 s."""
    width = len(str(n))
    chars = np.empty((n, len(prefix) + width), np.uint32)  # one code point per character
    chars[:, :len(prefix)] = [ord(c) for c in prefix]
    rest = np.arange(1, n + 1, dtype=np.int64)
    for k in range(1, width + 1):  # a loop over digits, the last first
        chars[:, -k] = rest % 10 + ord("0")
        rest //= 10
    return chars.view(np.dtype(f"U{chars.shape[1]}"))[:, 0].astype(object)


#: the first letter of a generated starting account's id (A0001, ...); new accounts won
#: during a run are N1, N2, ...
START_PREFIX = "A"


def _streams(seed: int) -> list[np.random.SeedSequence]:
    """A generated portfolio's child streams: one a drawn field (DRAWN_FIELDS' order), then
    the segments', then the industries'."""
    return np.random.SeedSequence([seed, 0x504F5254]).spawn(len(DRAWN_FIELDS) + 2)


def generate_labels(gen: PortfolioGenerate, seed: int, id_prefix: str = START_PREFIX
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ids, segments and industries of :func:`generate_portfolio`'s accounts, without
    drawing their numbers (what the decision units are built from)."""
    n = gen.accounts
    streams = _streams(seed)
    segment = _categorical(gen.segments, n, np.random.default_rng(streams[-2]))
    industry = _categorical(gen.industries, n, np.random.default_rng(streams[-1]))
    return numbered_ids(id_prefix, n), segment, industry


def generate_numbers(gen: PortfolioGenerate, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """(field, values) of :func:`generate_portfolio`'s drawn fields, one at a time in
    DRAWN_FIELDS' order: a caller that copies each into place keeps one field's draws alive,
    not all of them (13 fresh 8 MB arrays at 1M accounts)."""
    n = gen.accounts
    for name, ss in zip(DRAWN_FIELDS, _streams(seed), strict=False):
        vals = sample(getattr(gen, name), n, np.random.default_rng(ss))
        if name in _UNIT_FIELDS:
            np.clip(vals, 0.0, 1.0, out=vals)
        if name in ("wallet", "tenure_months", "purchase_frequency"):
            np.maximum(vals, 0.0, out=vals)
        yield name, vals


def generate_portfolio(gen: PortfolioGenerate, seed: int, id_prefix: str = START_PREFIX
                       ) -> Accounts:
    """A synthetic portfolio; each field has its own child stream, so changing one
    distribution does not reshuffle the others. Accounts are named ``id_prefix`` + their
    number, zero-padded to the digits of the portfolio's size."""
    ids, segment, industry = generate_labels(gen, seed, id_prefix)
    return Accounts(ids, dict(generate_numbers(gen, seed)), segment, industry)


@dataclass
class ImportedTable:
    """A CRM export read and checked at load time (the engine never reads files)."""

    path: str
    account_id: np.ndarray
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    segment: np.ndarray | None = None
    industry: np.ndarray | None = None
    #: where each segment is first given (a note about it is located there)
    segment_at: dict[str, Location] = field(default_factory=dict)

    def drawn(self) -> list[str]:
        """The fields the export does not give, drawn from the import's ``defaults``
        (``kamsim validate`` names them: a column kamsim did not recognise is one of them)."""
        return [f for f in ("segment", "industry") if getattr(self, f) is None] + [
            f for f in DRAWN_FIELDS if f not in self.numbers]


def _spelling(known: Sequence[str]) -> dict[str, str]:
    """Each of ``known`` by its :func:`_norm` form (the first of two with the same form)."""
    out: dict[str, str] = {}
    for name in known:
        out.setdefault(norm_name(name), name)
    return out


def read_portfolio_csv(path: str | Path, spec: PortfolioImport, *, display: str | None = None,
                       max_bytes: int = 200_000_000, segments: Sequence[str] = (),
                       on_read: Callable[[bytes], None] | None = None) -> ImportedTable:
    """Read a CRM export. Columns are mapped by ``spec.columns`` (kamsim field -> column);
    unmapped fields whose name is a column are taken as they are. ``account_id`` is required.
    Column names are compared without case, spaces or ``-`` (``Payment Risk`` is
    ``payment_risk``); a column whose name is a near miss of a field the file does not give
    (``loyality``) is a problem, as that field would be drawn instead. A segment or industry
    that differs only so from a known one (``segments``, the stakeholder rules' unit
    templates, and those of ``spec.defaults``) is read as that one: ``Small`` gets the
    ``small`` decision units. Every bad cell is reported at ``file:row:column``.

    The file is read once; ``on_read`` is given the bytes read (that are parsed), as soon as
    they are: the scenario's loader records their hash with the run."""
    shown = display or str(path)
    p = Path(path)
    # a file that is gone, a folder or one without read permission is one located problem
    # (as load_yaml words it), not a traceback
    try:
        size = p.stat().st_size
        if size > max_bytes:
            p.open("rb").close()  # (one it cannot open is told so first)
        else:
            data = p.read_bytes()
    except OSError as exc:
        raise InputError([Problem(Location(shown, 1, 1),
                                  f"cannot read file: {exc.strerror or exc}",
                                  "an existing, readable file")]) from None
    if size > max_bytes:
        raise InputError([Problem(Location(shown, 1, 1), "file is too large",
                                  f"at most {max_bytes} bytes")])
    if on_read is not None:
        on_read(data)
    check_csv_head(data, shown)  # a workbook, ';' or tabs between fields: one line saying so
    problems: list[Problem] = []
    with csv_lines(data) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError([Problem(Location(shown, 1, 1), "file is empty",
                                      "a header row and one row per account")]) from None
        except UnicodeDecodeError:
            raise InputError([decode_problem(data, shown)]) from None
        except csv.Error as exc:
            raise InputError([Problem(Location(shown, 1, 1), f"unreadable CSV: {exc}")]) from None
        # a repeated column name would make the mapping pick one of the two silently (and a
        # ragged row would shift its values into the neighbouring fields): both are refused,
        # every instance reported, the rows still checked so all problems come at once
        # columns by their compared form (_norm); ``names`` keeps each as the header spells it
        cols: dict[str, int] = {}
        names = [raw.strip() for raw in header]
        repeated: list[Problem] = []
        ambiguous: set[str] = set()
        for i, raw in enumerate(names):
            name = norm_name(raw)
            if name and name in cols:
                ambiguous.add(name)
                repeated.append(Problem(Location(shown, 1, i + 1),
                                        f"column {raw!r} repeats (first in column "
                                        f"{cols[name] + 1})", "each column name once"))
            cols.setdefault(name, i)
        mapping: dict[str, str] = {}
        known = ["account_id", "segment", "industry", *DRAWN_FIELDS]
        for fld, col in spec.columns.items():
            if fld not in known:
                hint = did_you_mean(fld, known)
                problems.append(Problem(Location(shown, 1, 1),
                                        f"column mapping names unknown field {fld!r}",
                                        f"{hint}one of: {', '.join(known)}"))
                continue
            if norm_name(col) not in cols:
                hint = did_you_mean(col, names)
                problems.append(Problem(Location(shown, 1, 1), f"no column {col!r} in the header",
                                        f"{hint}one of: {', '.join(names)}"))
                continue
            mapping[fld] = norm_name(col)
        for fld in known:
            if fld not in mapping and fld in cols:
                mapping[fld] = fld
        # a column named almost like a field the file does not give: that field would be
        # drawn at random while the user's data sits next to it (`loyality`)
        read = set(mapping.values())
        missing = [fld for fld in known if fld not in mapping]
        for key, i in cols.items():
            if key in read or key in known:
                continue
            near = difflib.get_close_matches(key, missing, n=1, cutoff=0.8)
            if near:
                problems.append(Problem(
                    Location(shown, 1, i + 1),
                    f"column {names[i]!r} is not a kamsim field, so {near[0]} would be drawn "
                    "at random", f"did you mean {near[0]!r}? rename the column, or map it: "
                    f"columns: {{{near[0]}: {names[i]}}}"))
        if "account_id" not in mapping:
            problems.append(Problem(Location(shown, 1, 1), "no account id column",
                                    "a column `account_id` or a mapping for it"))
        if problems:
            raise InputError(problems + repeated)
        problems = repeated
        labels = {"segment": _spelling([*segments, *spec.defaults.segments]),
                  "industry": _spelling(list(spec.defaults.industries))}
        values: dict[str, list[object]] = {f: [] for f in mapping}
        seen: dict[str, int] = {}
        segment_at: dict[str, Location] = {}
        try:
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    problems.append(Problem(Location(shown, line, min(len(row), len(header)) + 1),
                                            f"the row has {len(row)} fields",
                                            f"{len(header)}, like the header"))
                    continue
                for fld, col in mapping.items():
                    if col in ambiguous:  # its cells would be guesses: reported once, above
                        continue
                    ci = cols[col]
                    cell = row[ci].strip()
                    where = Location(shown, line, ci + 1)
                    if fld in ("account_id", "segment", "industry"):
                        if not cell:
                            problems.append(Problem(where, f"empty {fld}", "a value"))
                        elif fld != "account_id":  # `Small` is the `small` segment
                            cell = labels[fld].get(norm_name(cell), cell)
                            if fld == "segment":
                                segment_at.setdefault(cell, where)
                        if fld == "account_id" and cell in seen:
                            problems.append(Problem(where, f"duplicate account id {cell!r}",
                                                    f"unique ids (first on row {seen[cell]})"))
                        seen.setdefault(cell, line) if fld == "account_id" else None
                        values[fld].append(cell)
                        continue
                    try:
                        num = float(cell)
                    except ValueError:
                        problems.append(Problem(where, f"{fld}: {cell!r} is not a number",
                                                "a number"))
                        num = 0.0
                    if not np.isfinite(num) or (num < 0 and fld not in _SIGNED_FIELDS):
                        problems.append(Problem(where, f"{fld}: {cell!r} is out of range",
                                                "a finite number >= 0"))
                    elif fld in _UNIT_FIELDS and num > 1:
                        problems.append(Problem(where, f"{fld}: {cell!r} is out of range",
                                                "a number between 0 and 1"))
                    values[fld].append(num)
        except UnicodeDecodeError:
            problems.append(decode_problem(data, shown))
        except csv.Error as exc:
            problems.append(Problem(Location(shown, reader.line_num, 1), f"unreadable CSV: {exc}"))
    if not values["account_id"] and not problems:
        problems.append(Problem(Location(shown, 2, 1), "no accounts", "one row per account"))
    if problems:
        raise InputError(capped(problems))
    table = ImportedTable(path=shown, account_id=np.array(values["account_id"], dtype=object),
                          segment_at=segment_at)
    for fld, vals in values.items():
        if fld in ("segment", "industry"):
            setattr(table, fld, np.array(vals, dtype=object))
        elif fld != "account_id":
            table.numbers[fld] = np.array(vals, dtype=np.float64)
    return table


def accounts_from_import(table: ImportedTable, spec: PortfolioImport, seed: int) -> Accounts:
    """Imported columns as they are; fields the export lacks are drawn from ``spec.defaults``."""
    n = int(table.account_id.shape[0])
    gen = spec.defaults.model_copy(update={"accounts": n})
    drawn = generate_portfolio(gen, seed)
    numbers = {k: table.numbers.get(k, drawn.numbers[k]) for k in DRAWN_FIELDS}
    seg = table.segment if table.segment is not None else drawn.segment
    ind = table.industry if table.industry is not None else drawn.industry
    return Accounts(table.account_id, numbers, seg, ind)


def starting_ids(spec: object) -> np.ndarray:
    """The ids of a scenario's starting accounts, as :func:`build_portfolio` names them, without
    drawing the portfolio: a lesson checks its focus account when it loads, before any run."""
    from kamsim.spec.load import ScenarioSpec

    assert isinstance(spec, ScenarioSpec)
    pf = spec.scenario.portfolio
    if pf.generate is not None:
        return numbered_ids(START_PREFIX, pf.generate.accounts)
    assert spec.portfolio_rows is not None
    return spec.portfolio_rows.account_id


def starting_parts(spec: object, seed: int | None = None
                   ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray],
                              Callable[[], Iterator[tuple[str, np.ndarray]]]]:
    """The starting accounts of a :class:`~kamsim.spec.load.ScenarioSpec` in two parts: their
    ids, segments and industries, and a function giving their numbers one field at a time
    (:func:`generate_numbers`; an import's columns as they are). A run's preparation builds
    the decision units, which read only the first part, while the second is drawn."""
    from kamsim.spec.load import ScenarioSpec

    assert isinstance(spec, ScenarioSpec)
    pf = spec.scenario.portfolio
    base_seed = spec.scenario.seed if seed is None else seed
    if pf.generate is not None:
        gen = pf.generate
        at = gen.seed if gen.seed is not None else base_seed
        return generate_labels(gen, at), lambda: generate_numbers(gen, at)
    assert pf.import_ is not None and spec.portfolio_rows is not None
    start = accounts_from_import(spec.portfolio_rows, pf.import_, base_seed)
    return (start.account_id, start.segment, start.industry), lambda: iter(start.numbers.items())


def build_portfolio(spec: object, seed: int | None = None) -> Accounts:
    """The starting accounts of a :class:`~kamsim.spec.load.ScenarioSpec`."""
    (ids, segment, industry), numbers = starting_parts(spec, seed)
    return Accounts(ids, dict(numbers()), segment, industry)
