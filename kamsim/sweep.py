"""Sweeps: one scenario played at several values of one or two settings, on the same random
futures, to find where a headline peaks and whether the best point is really ahead.

Every point runs with the same seed and number of replications, so replication ``r`` of
every point sees the same random future (common random numbers): the difference between
two points is taken replication by replication, with the paired interval of
:mod:`kamsim.compare`, and the shared luck cancels out. Each point's Result is
bit-identical to ``simulate(point, replications=..., seed=...)``.

A point is the scenario with ``--set``-style overrides (``capacity.account_managers=20``),
so every point is validated like a ``--set`` before anything runs, and a problem is located
at the ``--vary`` value it comes from (``--vary[0]:1:27``): at the key (column 1) when every
value has it, at the value and naming the point when only some do.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from kamsim import _callable_module
from kamsim.compare import ALL, RunFigures, difference_rows
from kamsim.errors import InputError, Location, Problem, RunError
from kamsim.results import BOUNDS, HEADLINES
from kamsim.stats import defined_mean, mean_ci

__all__ = ["sweep", "Sweep", "MAX_POINTS", "parse_vary"]

#: more points than this is refused: a sweep that large is a mistake in a range (a step of
#: 1 instead of 10) far more often than a study anyone means to wait for
MAX_POINTS = 200

#: measures where less is better; for the others the best point has the highest mean
LOWER_IS_BETTER = frozenset({"cost_to_serve"})

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE = re.compile(rf"\s*({_NUMBER})\s*:\s*({_NUMBER})\s*:\s*({_NUMBER})\s*")


@dataclass(frozen=True)
class _Axis:
    """One ``--vary``: its key and values, each with its text and column in the option."""

    index: int
    key: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]
    cols: tuple[int, ...]

    def where(self, col: int = 1) -> Location:
        return Location(f"--vary[{self.index}]", 1, col)


def _key_path(key: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in key.strip().split("."))


def _range(text: str, where: Location) -> tuple[list[str], list[Problem]]:
    """The values of ``START:STOP:STEP`` as text: STOP included when it falls on the grid,
    integers when all three are, decimals computed exactly (0.1 steps give 0.3, not
    0.30000000000000004)."""
    m = _RANGE.fullmatch(text)
    assert m is not None
    start, stop, step = (Decimal(g) for g in m.groups())  # (the pattern lets only numbers by)
    if step == 0:
        return [], [Problem(where, f"range {text!r} has a step of 0",
                            "a step that moves from START towards STOP")]
    count = (stop - start) / step
    if count < 0:
        return [], [Problem(where, f"range {text!r} steps away from its end",
                            "a positive step when START < STOP, a negative one otherwise")]
    n = int(count) + 1
    if n > MAX_POINTS:  # (told before the values are made)
        return [], [Problem(where, f"range {text!r} has {n} values, more than a sweep takes",
                            f"at most {MAX_POINTS} points in all")]
    ints = all(re.fullmatch(r"[+-]?\d+", g) for g in m.groups())
    values = [start + i * step for i in range(n)]
    return [str(int(v)) if ints else _decimal_text(v) for v in values], []


def _decimal_text(v: Decimal) -> str:
    text = format(v.normalize(), "f")
    return text if "." in text else text + ".0"  # (stays a float when parsed)


def _parse_one(item: str, index: int) -> tuple[_Axis | None, list[Problem]]:
    """One ``--vary KEY=V1,V2,...`` or ``KEY=START:STOP:STEP``."""
    from kamsim.spec.yamlpos import load_yaml_text

    at = Location(f"--vary[{index}]", 1, 1)
    if "=" not in item:
        return None, [Problem(at, f"--vary {item!r} has no '='",
                              "KEY=V1,V2,... or KEY=START:STOP:STEP")]
    key, _, raw = item.partition("=")
    if not all(_key_path(key)):
        return None, [Problem(at, f"bad key {key!r}", "a dotted path like a.b.c")]
    start = len(key) + 2  # column of the first value
    if _RANGE.fullmatch(raw):
        texts, problems = _range(raw, Location(at.path, 1, start))
        cols = [start] * len(texts)
    else:
        texts, cols, problems = [], [], []
        col = start
        for part in raw.split(","):
            lead = len(part) - len(part.lstrip())
            texts.append(part.strip())
            cols.append(col + lead)
            col += len(part) + 1
    values: list[Any] = []
    texts_ok: list[str] = []
    cols_ok: list[int] = []
    seen: dict[str, int] = {}
    for text, col in zip(texts, cols, strict=True):
        where = Location(at.path, 1, col)
        if not text:
            problems.append(Problem(where, f"--vary {key.strip()} has an empty value",
                                    "values separated by commas"))
            continue
        if ":" in text and text[0] not in "'\"":
            # not a whole range: as a YAML value a colon makes a base-60 number (20:30 is
            # 1230) or a mapping, never what was meant
            problems.append(Problem(where, f"{text!r} is not a range or a value",
                                    "START:STOP:STEP, or values separated by commas"))
            continue
        try:
            value = load_yaml_text(text, at.path).data
        except InputError as exc:
            first = exc.problems[0]
            if " would be read as " in first.message:  # (an octal 012: told as it is)
                problems.append(Problem(where, first.message, first.expected))
            else:
                problems.append(Problem(where, f"value {text!r} is not a YAML value "
                                        f"({first.message})", "a number, word or true"))
            continue
        canon = repr(value)
        if canon in seen:
            problems.append(Problem(where, f"value {text!r} of {key.strip()} is given twice",
                                    "each value once"))
            continue
        seen[canon] = col
        values.append(value)
        texts_ok.append(text)
        cols_ok.append(col)
    if not values:
        return None, problems
    # the values that parsed, with the others' problems: their points are still checked,
    # so that all the problems come at once
    return _Axis(index, ".".join(_key_path(key)), tuple(values), tuple(texts_ok),
                 tuple(cols_ok)), problems


def _clash(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two dotted keys name the same value, or one a value inside the other."""
    return a[:len(b)] == b or b[:len(a)] == a


#: settings of the run, not of the model: every point of a sweep shares them (the study
#: takes its seed and replications from the first point, and its table one confidence
#: level), so varying one would be accepted and not honoured. Key -> (why, what to use).
RUN_SETTINGS = {
    # the seed builds each point's portfolio and seeds its replications: points with
    # other seeds would not be paired
    "seed": ("the seed is not a setting to sweep: every point shares it, which is what "
             "pairs them", "--seed N for another seed, -r N for more random futures"),
    "replications": ("replications are not a setting to sweep: every point runs the same "
                     "number, so that they are paired", "-r N for every point"),
    "confidence": ("the confidence level is not a setting to sweep: the table and verdict "
                   "give every point's interval at one level",
                   "--set confidence=0.9 for every point"),
    # names a run: every point would give the same figures under another name
    "name": ("the scenario's name is not a setting to sweep: it changes no figure (each "
             "point is named after its values)", "--set name=... for every point"),
    "description": ("the description is not a setting to sweep: it changes no figure",
                    "--set description=... for every point"),
}


def parse_vary(vary: Sequence[str], overrides: Sequence[str] = ()) -> list[_Axis]:
    """The axes of ``vary`` (``KEY=V1,V2,...`` or ``KEY=START:STOP:STEP`` each), checked:
    a key varied twice or also given in ``overrides`` (``--set``), a setting of the run
    (:data:`RUN_SETTINGS`), and a grid of more than :data:`MAX_POINTS` points, are
    problems. Raises InputError with all of them."""
    axes, values_bad, problems = _axes(vary, overrides)
    if values_bad or problems:
        raise InputError(dict.fromkeys(values_bad + problems))
    return axes


def _axes(vary: Sequence[str], overrides: Sequence[str]
          ) -> tuple[list[_Axis], list[Problem], list[Problem]]:
    """(the axes, with the values that parsed; the problems of the other values; the other
    problems). Without other problems the axes' points can still be checked."""
    if not vary:
        raise InputError([Problem(Location("--vary"), "nothing to vary",
                                  "at least one --vary KEY=V1,V2,...")])
    axes: list[_Axis] = []
    values_bad: list[Problem] = []
    problems: list[Problem] = []
    for i, item in enumerate(vary):
        axis, probs = _parse_one(item, i)
        if axis is not None:
            axes.append(axis)
            values_bad += probs
        else:
            problems += probs
    sets = [(i, _key_path(s.partition("=")[0])) for i, s in enumerate(overrides) if "=" in s]
    for n, axis in enumerate(axes):
        path = _key_path(axis.key)
        if len(path) == 1 and path[0] in RUN_SETTINGS:
            problems.append(Problem(axis.where(), *RUN_SETTINGS[path[0]]))
        for i, other in sets:
            if _clash(path, other):
                problems.append(Problem(axis.where(), f"{axis.key} is also given by "
                                        f"--set[{i}]", "each key either set or varied"))
        for before in axes[:n]:
            if _clash(path, _key_path(before.key)):
                problems.append(Problem(axis.where(), f"{axis.key} is already varied by "
                                        f"--vary[{before.index}]", "each key varied once"))
    if not problems and not values_bad:
        n_points = int(np.prod([len(a.values) for a in axes]))
        if n_points > MAX_POINTS:
            sizes = " x ".join(str(len(a.values)) for a in axes)
            problems.append(Problem(Location("--vary"), f"{n_points} points ({sizes}) are "
                                    "more than a sweep takes",
                                    f"at most {MAX_POINTS} points in all"))
    return axes, values_bad, problems


def _load_points(path: str, base: Sequence[str], axes: Sequence[_Axis]
                 ) -> tuple[list[dict[str, Any]], list[str], list[Any]]:
    """Every point of the grid (first axis outermost) as a ScenarioSpec; all the problems
    of all the points at once. The points are one file with other overrides: each file is
    read, checked and hashed once for all of them (``reading_once``)."""
    from kamsim.spec.load import load_scenario, reading_once

    grid = list(itertools.product(*(range(len(a.values)) for a in axes)))
    points, labels, specs = [], [], []
    # a problem (a --vary one whatever the value's column) -> point number -> its location
    found: dict[tuple[Any, ...], dict[int, Location]] = {}
    sets_at: list[Location | None] = [None] * len(base)  # each --set where its problem is
    with reading_once():
        for p, ix in enumerate(grid):
            points.append({a.key: a.values[i] for a, i in zip(axes, ix, strict=True)})
            mine = [f"{a.key}={a.texts[i]}" for a, i in zip(axes, ix, strict=True)]
            labels.append(", ".join(mine))
            where = sets_at + [a.where(a.cols[i]) for a, i in zip(axes, ix, strict=True)]
            try:
                specs.append(load_scenario(path, [*base, *mine], where=where))
            except InputError as exc:
                for prob in exc.problems:
                    at: Any = prob.loc.path if prob.loc.path.startswith("--vary[") else prob.loc
                    found.setdefault((at, prob.message, prob.expected), {})[p] = prob.loc
    if found:
        raise InputError(dict.fromkeys(_located(found, axes, grid, labels)))
    return points, labels, specs


def _located(found: dict[tuple[Any, ...], dict[int, Location]], axes: Sequence[_Axis],
             grid: Sequence[tuple[int, ...]], labels: Sequence[str]) -> list[Problem]:
    """A problem every point has, as it is (a --vary one at its key); one that only some
    points have names them: a --vary problem at each value it comes from (``at KEY=V``),
    any other with the points' labels."""
    by_path = {f"--vary[{a.index}]": (n, a) for n, a in enumerate(axes)}
    out = []
    for (at, message, expected), hits in found.items():
        if isinstance(at, str):  # at a --vary
            n, axis = by_path[at]
            if len(hits) == len(grid):  # every value: the key's problem
                out.append(Problem(axis.where(), message, expected))
                continue
            for v in sorted({grid[p][n] for p in hits}):
                mine = [p for p in hits if grid[p][n] == v]
                # the value's problem wherever it is; else only with some other values
                whole = len(mine) == sum(1 for g in grid if g[n] == v)
                what = f"{axis.key}={axis.texts[v]}" if whole else _named(labels, mine)
                out.append(Problem(axis.where(axis.cols[v]), f"at {what}: {message}",
                                   expected))
            continue
        if len(hits) == len(grid):
            out.append(Problem(at, message, expected))
            continue
        what = _named(labels, hits)
        for n, axis in enumerate(axes):  # the points of one value: that value names them
            values = {grid[p][n] for p in hits}
            if len(values) == 1:
                v = values.pop()
                if len(hits) == sum(1 for g in grid if g[n] == v):
                    what = f"{axis.key}={axis.texts[v]}"
                    break
        out.append(Problem(at, f"at {what}: {message}", expected))
    return out


def _named(labels: Sequence[str], points: Any) -> str:
    names = [labels[p] for p in sorted(points)]
    return "; ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@dataclass
class Sweep:
    """A scenario's points and their Results, compared on the same random futures."""

    keys: list[str]
    points: list[dict[str, Any]]
    labels: list[str]
    results: list[Any]
    run_ids: list[str | None] = field(default_factory=list)
    _figures: list[RunFigures] = field(default_factory=list, repr=False)
    _best: dict[str, int] = field(default_factory=dict, repr=False)  # best_index's, by measure

    def __post_init__(self) -> None:
        if not self.run_ids:
            self.run_ids = [None] * len(self.results)
        # named by their points, so that difference rows say which point they are about
        self._figures = [replace(RunFigures.from_result(r), name=label)
                         for r, label in zip(self.results, self.labels, strict=True)]

    @property
    def scenario(self) -> str:
        return str(self.results[0].scenario)

    @property
    def seed(self) -> int:
        return int(self.results[0].seed)

    @property
    def replications(self) -> int:
        return int(self.results[0].replications)

    @property
    def confidence(self) -> float:
        return float(self.results[0].confidence)

    @property
    def currency(self) -> str:
        return str(self.results[0].currency)

    def _means(self, measure: str, tier: str = ALL) -> np.ndarray:
        col = 0 if tier == ALL else self._figures[0].tiers.index(tier) + 1
        return np.array([defined_mean(f.per_rep[measure][:, col]) for f in self._figures])

    def best_index(self, measure: str = "profit") -> int:
        """The point with the best mean of ``measure`` over all accounts (the highest; the
        lowest for cost to serve). Among exact equals, the one of the smallest values
        (the cheapest capacity that does as well), whatever order they were given in."""
        if measure not in HEADLINES:
            raise ValueError(f"unknown measure {measure!r} (one of {', '.join(HEADLINES)})")
        if measure not in self._best:  # (asked for every row of the table and the verdict)
            means = self._means(measure)
            if measure in LOWER_IS_BETTER:
                means = -means
            if np.isnan(means).all():
                self._best[measure] = 0
            else:
                top = np.flatnonzero(means == np.nanmax(means))
                self._best[measure] = min((int(i) for i in top), key=self._order)
        return self._best[measure]

    def _numeric(self, key: str) -> bool:
        """Whether every point's value of ``key`` is a number (True/False are not)."""
        return all(isinstance(p[key], int | float) and not isinstance(p[key], bool)
                   for p in self.points)

    def _order(self, i: int) -> tuple[Any, ...]:
        """Point ``i``'s place by its values, smallest first (key by key; by the order
        given for a key that is not a number)."""
        return tuple(self.points[i][k] if self._numeric(k) else i for k in self.keys)

    def _at_edge(self, i: int) -> bool:
        """Whether point ``i`` has the smallest or largest value of a numeric key that
        varies: beyond it was not tried. Said of numbers only (strategy names have no
        beyond)."""
        for k in self.keys:
            if not self._numeric(k):
                continue
            values = [p[k] for p in self.points]
            if min(values) != max(values) and self.points[i][k] in (min(values), max(values)):
                return True
        return False

    def same_as_best(self, i: int, measure: str = "profit") -> bool:
        """Whether point ``i`` has exactly the best point's ``measure`` (all accounts) in
        every replication: not merely close, but the same figures (capacity past what the
        service levels ask for changes nothing)."""
        a = self._figures[i].per_rep[measure][:, 0]
        b = self._figures[self.best_index(measure)].per_rep[measure][:, 0]
        return bool(np.array_equal(a, b, equal_nan=True))

    def best(self, measure: str = "profit") -> dict[str, Any]:
        """The point (key -> value) with the best mean of ``measure``."""
        return dict(self.points[self.best_index(measure)])

    def table(self, measure: str = "profit") -> Any:
        """One row per point x tier (``all`` first) x headline: the point's values, its
        mean and interval, and its difference from the best point for ``measure`` paired by
        replication (0 for the best point itself)."""
        import pandas as pd

        best = self._figures[self.best_index(measure)]
        rows = []
        for point, label, fig in zip(self.points, self.labels, self._figures, strict=True):
            own = {(r["tier"], r["metric"]): r for r in difference_rows(best, fig, label)}
            tiers = [ALL, *fig.tiers]
            for col, tier in enumerate(tiers):
                for metric in HEADLINES:
                    stat = mean_ci(fig.per_rep[metric][:, col], fig.confidence,
                                   BOUNDS.get(metric))
                    d = own[(tier, metric)]
                    rows.append({**point, "point": label, "tier": tier, "metric": metric,
                                 "mean": stat["mean"], "low": stat["ci_low"],
                                 "high": stat["ci_high"], "n": stat["n"],
                                 "diff": d["diff"], "diff_low": d["diff_low"],
                                 "diff_high": d["diff_high"]})
        cols = [*self.keys, "point", "tier", "metric", "mean", "low", "high", "n", "diff",
                "diff_low", "diff_high"]
        return pd.DataFrame(rows, columns=cols)

    def verdict(self, measures: Sequence[str] = ("profit", "retention")) -> list[str]:
        """Per measure, one sentence: where it peaks over all accounts, and whether the best
        point is clearly ahead of every other point (each one's paired interval of the
        difference excludes 0, not only the second-highest mean's) or which points it cannot
        be told apart from. Differences are the point's minus the best's, as in
        :meth:`table`."""
        return [self._verdict(m) for m in measures]

    def _fmt(self, measure: str) -> tuple[Callable[[float], str], Callable[[float], str]]:
        """(value, size of a difference) formatters of ``measure``."""
        from kamsim.report.terminal import money, pct

        if measure in BOUNDS:  # a share: points of percentage
            return pct, lambda v: f"{abs(100 * v):.1f} points"
        return (lambda v: money(v, self.currency),
                lambda v: money(abs(v), self.currency))

    def _verdict(self, measure: str) -> str:
        b = self.best_index(measure)
        value, amount = self._fmt(measure)
        name = measure.replace("_", " ")
        means = self._means(measure)
        lowest = measure in LOWER_IS_BETTER
        text = (f"{name} is {'lowest' if lowest else 'highest'} at {self.labels[b]} "
                f"({value(means[b])})")
        if len(self.points) < 2:
            return text
        if self._at_edge(b):
            # (beyond it may be better still, or as good with less: not tried either way)
            text += ", at the edge of the values swept (none beyond it was tried)"
        best = self._figures[b]
        # point - best, per point, as the table's column: negative when the point is
        # behind (positive, for a cost)
        diffs = {i: next(r for r in difference_rows(best, self._figures[i], self.labels[i])
                         if r["tier"] == ALL and r["metric"] == measure)
                 for i in range(len(self.points)) if i != b}
        sign = 1 if lowest else -1  # (sign * difference: how far the point is behind)

        def behind(i: int) -> bool:  # the interval excludes 0 on the worse side
            d = diffs[i]
            return bool(d["diff_low"] > 0 if lowest else d["diff_high"] < 0)

        def nearest(i: int) -> tuple[float, float, tuple[Any, ...]]:
            """The interval's end nearest the best (the mean with no interval): the
            smallest is the point hardest to tell apart from the best."""
            d = diffs[i]
            end = d["diff_low"] if lowest else d["diff_high"]
            return (sign * (d["diff"] if end != end else end), sign * d["diff"], self._order(i))

        # points that did exactly as the best in every replication (capacity past what is
        # asked for: the same service delivered) are told as such, not as "no clear
        # difference"; the next is the hardest of the others to tell apart from the best
        same = sorted((i for i in diffs if self.same_as_best(i, measure)), key=self._order)
        if same:
            text += (f"; {self._listed([self.labels[i] for i in same])} "
                     f"give{'s' if len(same) == 1 else ''} exactly the same {name} in every "
                     "replication")
        order = sorted((i for i in diffs if i not in same), key=nearest)
        if not order:
            return text
        second = order[0]
        d = diffs[second]
        from kamsim.report.terminal import percent_label

        conf = percent_label(self.confidence)

        def short(v: float) -> str:  # (v is point - best)
            if measure in BOUNDS:
                return f"{name} {amount(v)} {'higher' if v > 0 else 'lower'}"
            return f"{amount(v)} {'more' if v > 0 else 'less'} {name}"

        def signed(v: float) -> str:
            return ("+" if v >= 0 else "\u2212") + amount(v)

        if d["diff_low"] != d["diff_low"]:  # NaN: one replication, no interval
            return (text + f"; the next, {self.labels[second]}: {short(d['diff'])} "
                    f"({d['n']} replication: no confidence interval; run more replications)")
        if all(behind(i) for i in order):
            a, c = sorted((abs(d["diff_low"]), abs(d["diff_high"])))
            low = f"{100 * a:.1f}" if measure in BOUNDS else amount(a)  # (unit once)
            return (text + f"; clearly ahead of every other point: the nearest, "
                    f"{self.labels[second]}, has {short(d['diff'])} ({conf} CI "
                    f"{low}–{amount(c)})")
        close = [self.labels[i] for i in order if not behind(i)]
        return (text + f"; it cannot be told apart from {self._listed(close)} "
                f"({self.labels[second]} minus the best: {signed(d['diff_low'])} to "
                f"{signed(d['diff_high'])}, {conf} CI)")

    def _listed(self, labels: list[str]) -> str:
        """Points in words; of one key, the key once (``a.b=28, 30 and 32``)."""
        if len(self.keys) == 1:
            prefix = f"{self.keys[0]}="
            labels = labels[:1] + [lab.removeprefix(prefix) for lab in labels[1:]]
        if len(labels) > 4:
            return ", ".join(labels[:3]) + f" and {len(labels) - 3} other points"
        return ", ".join(labels[:-1]) + (" and " if len(labels) > 1 else "") + labels[-1]

    def to_json(self) -> dict[str, Any]:
        """Plain data for scripts: the points (with their run ids once recorded), the best
        point per headline, the rows of :meth:`table` and the verdict."""
        def plain(v: Any) -> Any:  # JSON has no NaN: an undefined figure is null
            if isinstance(v, float | np.floating):
                return None if v != v else float(v)
            if isinstance(v, np.integer):
                return int(v)
            return v

        return {
            "scenario": self.scenario, "seed": self.seed, "replications": self.replications,
            "confidence": self.confidence, "keys": list(self.keys),
            "points": [{"label": lab, "values": p, "run_id": rid}
                       for lab, p, rid in zip(self.labels, self.points, self.run_ids,
                                              strict=True)],
            "best": {m: self.labels[self.best_index(m)] for m in HEADLINES},
            "rows": [{k: plain(v) for k, v in row.items()}
                     for row in self.table().to_dict(orient="records")],
            "verdict": self.verdict(),
        }


def sweep(scenario: Any, vary: Sequence[str] | str, *, replications: int | None = None,
          seed: int | None = None, workers: int | None = None, dask: str | None = None,
          overrides: Sequence[str] = (),
          progress: Callable[[float, int], None] | None = None) -> Sweep:
    """Play ``scenario`` (a file, or a ScenarioSpec loaded from one) at every point of the
    grid of ``vary`` (``KEY=V1,V2,...`` or ``KEY=START:STOP:STEP`` each, keys as ``--set``
    takes them; several make the full grid, the first outermost), on the same random
    futures, and return a :class:`Sweep`.

    Every point is checked before anything runs; all the problems of all the points are
    raised at once (InputError). ``overrides`` (``key=value``) apply to every point. All the
    points' replications run as one study (one pool of ``workers`` processes, or one Dask
    submission at ``dask``); ``progress(done, total)`` counts them."""
    from kamsim.experiment import simulate_many
    from kamsim.spec.load import ScenarioSpec, load_scenario

    if isinstance(vary, str):
        vary = [vary]
    base = list(overrides)
    if isinstance(scenario, ScenarioSpec):
        # A spec is its file and its overrides (what load_scenario made of them): the
        # points are that file with those overrides and the point's. A spec changed since
        # (in Python) has no file to make points from.
        path = scenario.path
        if not Path(path).is_file() or load_scenario(
                path, scenario.overrides).digest() != scenario.digest():
            raise RunError(f"the scenario {scenario.name!r} is no longer what its file "
                           f"{path} and overrides give: sweep the file (with overrides)")
        base = [*scenario.overrides, *base]
    else:
        path = str(scenario)
        if not Path(path).is_file():
            raise RunError(f"{path}: no such scenario file")
    axes, values_bad, problems = _axes(vary, base)
    if problems:
        raise InputError(dict.fromkeys(values_bad + problems))
    try:
        points, labels, specs = _load_points(path, base, axes)
    except InputError as exc:  # with the values that did not parse: all at once
        raise InputError(dict.fromkeys(values_bad + list(exc.problems))) from None
    if values_bad:
        raise InputError(dict.fromkeys(values_bad))
    results = simulate_many(specs, replications=replications, seed=seed, workers=workers,
                            dask=dask, progress=progress)
    return Sweep(keys=[a.key for a in axes], points=points, labels=labels, results=results)


_callable_module(__name__, sweep)  # kamsim.sweep(...) whichever was imported first
