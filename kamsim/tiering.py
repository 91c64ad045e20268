"""Tiering: a weighted scorecard normalised across the portfolio, a decision table from
score and indicators to tier, value-matrix quadrants, and re-tiering with hysteresis.

Everything is vectorised over the accounts selected by ``mask`` (the active ones): the
portfolio-wide helpers (ranks, cumulative shares) are computed over those accounts only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from kamsim.errors import InputError, Location, Problem
from kamsim.fields import QUADRANT_NAMES, field_types
from kamsim.rules.expr import Expr, compile_expr
from kamsim.rules.functions import (
    column,
    compiled_sorts,
    forget,
    rank_pct,
    shared_sorts,
    side_by_side,
)
from kamsim.rules.tables import DecisionTable, Row, TableHitError
from kamsim.spec.models import TieringRules

__all__ = ["CompiledTiering", "compile_tiering", "QUADRANTS", "TierAssignment", "tier_portfolio",
           "check_start"]

QUADRANTS = QUADRANT_NAMES  # (one list: kamsim.fields, which rule expressions check against)


def _rank_pct(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average-rank percentile of ``x`` among the masked rows; 0 outside the mask."""
    if not np.isnan(x).any():
        # the rule language's rank_pct: the same figures, and a sort a table may reuse
        return rank_pct(x, x.shape[0], mask)
    # NaN ranks last here, each NaN on its own (rank_pct leaves NaN out)
    out = np.zeros(x.shape[0])
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    v = x[idx]
    order = np.argsort(v)  # ties are averaged below, so the sort need not be stable
    sv = v[order]
    # average 1-based rank of each run of equal values
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])
    ends = np.r_[starts[1:], sv.size]
    ranks = np.empty(idx.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    out[idx] = ranks / idx.size
    return out


def _bare_field(expr: Expr) -> str | None:
    """The field ``expr`` is, if it is a bare field name (``loyalty``), else None."""
    name = expr.source.strip()
    return name if name in expr.names else None


def _evaluate(expr: Expr, env: dict[str, np.ndarray], n: int, mask: np.ndarray
              ) -> tuple[np.ndarray, str | None]:
    """The value of ``expr`` and, if it is a bare number field, the field's name: then the
    value is the env's own array rather than a copy, so that a table's
    ``rank_pct``/``cum_share`` of the same field reuse its sort."""
    name = _bare_field(expr)
    if name is not None:
        return column(env, name, "number", n), name
    return expr(env, n, mask), None


def _normalise(x: np.ndarray, how: str, mask: np.ndarray) -> np.ndarray:
    if how == "rank":
        return _rank_pct(x, mask)
    if not mask.any():
        return np.zeros_like(x)
    v = x[mask]
    if how == "minmax":
        lo, hi = float(v.min()), float(v.max())
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.full_like(x, 0.5)
    if how == "zscore":
        sd = float(v.std())
        z = (x - float(v.mean())) / sd if sd > 0 else np.zeros_like(x)
        return np.clip((z + 3.0) / 6.0, 0.0, 1.0)
    return np.clip(x, 0.0, 1.0)


@dataclass(frozen=True)
class CompiledTiering:
    tiers: tuple[str, ...]
    indicators: tuple[tuple[str, Expr, float, str], ...]
    table: DecisionTable
    every_months: int
    hysteresis: float
    volume: Expr
    loyalty: Expr
    volume_cut: float
    loyalty_cut: float
    #: where the table is in its file (a kamsim.spec.load.TablePlace), for the problem of a
    #: `unique` table whose rows overlap on some accounts; None: compiled without a file
    place: Any = None

    @cached_property
    def reread(self) -> frozenset[str]:
        """The fields and indicators read after the indicators are worked out: by the table
        and the quadrant axes."""
        return self.table.names | self.volume.names | self.loyalty.names

    @cached_property
    def _outputs_finite(self) -> bool:
        """Whether the table's output can never be NaN: it has a default and every row's
        output is finite (a tier's index, as compiled), so even a ``collect_sum`` of them
        is a number."""
        return self.table.default is not None and all(
            np.isfinite(row.output) for row in self.table.rows)

    @cached_property
    def reads(self) -> frozenset[str]:
        """Every field the tiering reads (the indicators' too): the first tiering is given
        the decision units' metrics only if it reads one of them."""
        return self.reread.union(*(expr.names for _n, expr, _w, _h in self.indicators))

    @cached_property
    def ranked_fields(self) -> frozenset[str]:
        """The fields an indicator ranks as they are (an indicator that is a bare number
        field, normalised by rank): each re-tiering sorts the field's own array."""
        return frozenset(name for _n, expr, _w, how in self.indicators
                         if how == "rank" and (name := _bare_field(expr)) is not None)

    @cached_property
    def reads_units(self) -> bool:
        """Whether the tiering reads a decision-unit field (coverage, dm_covered, ...): only
        then does the first tiering need the units' starting metrics (prepare, initial_env
        and kamsim validate's check all ask this)."""
        from kamsim.dmu.metrics import UNIT_FIELDS

        return bool(self.reads & set(UNIT_FIELDS))

    def indicator_values(self, env: dict[str, np.ndarray], mask: np.ndarray, *,
                         threads: int = 2) -> dict[str, np.ndarray]:
        """Each indicator, normalised to 0-1 across the masked accounts (``threads``: see
        :meth:`classify`)."""
        with shared_sorts():
            return dict(self._normalised(env, mask, reread=None, threads=threads))

    def _normalised(self, env: dict[str, np.ndarray], mask: np.ndarray,
                    reread: frozenset[str] | None, threads: int
                    ) -> Iterator[tuple[str, np.ndarray]]:
        """(name, normalised value) of each indicator in order, inside a shared_sorts block.

        The ranks are independent sorts: two at a time on a big portfolio when ``threads``
        allows (one at a time in a worker process: its other core runs another worker's
        replication, and a second thread would only fight it for that core). ``reread``: the
        fields and indicators read after these (None: any may be); the block forgets the
        sorts of the others as soon as their rank is known, so that a million-account
        portfolio does not hold a dozen sorts it will not use again (their memory serves the
        next ones instead of fresh pages).
        """
        n = mask.shape[0]
        raw = []
        for name, expr, _w, how in self.indicators:
            x, field = _evaluate(expr, env, n, mask)
            keep = reread is None or name in reread or (field is not None and field in reread)
            raw.append((x, how, keep))

        def normalise(item: tuple[np.ndarray, str, bool]) -> np.ndarray:
            x, how, keep = item
            value = _normalise(x, how, mask)
            if not keep:
                forget(x, n, mask)
            return value

        names = (name for name, _e, _w, _h in self.indicators)
        return zip(names, side_by_side(normalise, raw, n, threads), strict=True)

    def _weigh(self, values: Iterator[tuple[str, np.ndarray]], mask: np.ndarray,
               keep: frozenset[str] = frozenset()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The score of these indicator values (score's figures) and the values named in
        ``keep``; each other value is let go of once added."""
        weights = {name: w for name, _e, w, _h in self.indicators}
        total = sum(abs(w) for w in weights.values()) or 1.0
        n = mask.shape[0]
        s, term = np.zeros(n), np.empty(n)
        kept = {}
        for name, value in values:
            w = weights[name]
            # s += w * v, or -w * (1 - v): the same roundings, into one reused buffer
            if w >= 0:
                np.multiply(value, w, out=term)
            else:
                np.subtract(1.0, value, out=term)
                term *= -w
            s += term
            if name in keep:
                kept[name] = value
        s /= total
        return (s if mask.all() else np.where(mask, s, 0.0)), kept

    def score(self, env: dict[str, np.ndarray], mask: np.ndarray,
              values: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Weighted score in 0-1: positive weights reward a high indicator, negative weights
        reward a low one; divided by the sum of absolute weights."""
        values = values if values is not None else self.indicator_values(env, mask)
        return self._weigh(((name, values[name]) for name, _e, _w, _h in self.indicators),
                           mask)[0]

    def _table(self, env: dict[str, np.ndarray], score: np.ndarray, values: dict[str, Any],
               mask: np.ndarray, ids: np.ndarray | None, nudged: np.ndarray | None = None,
               at: np.ndarray | None = None) -> np.ndarray:
        """Tier indices from the table; ``nudged``: each account's score moved, read as if
        that account alone had moved (its rank, z-score, ... against the others' ``score``);
        ``at`` (indices): the tiers of those accounts only, in their order."""
        # the fields the table reads, an indicator's value or the score in place of a field
        # of the same name (copying the whole env would work out every derived field of an
        # engine's Fields, names included)
        env2 = {name: score if name == "score" else values[name] if name in values else env[name]
                for name in self.table.names if name == "score" or name in values or name in env}
        moved = None if nudged is None else {"score": nudged}
        try:
            out = self.table.outputs(env2, mask.shape[0], mask, moved, at)
        except TableHitError as exc:
            raise self._overlap(exc, ids, nudged is not None) from None
        if self._outputs_finite:
            return out.astype(np.int64)  # (no NaN to replace)
        return np.where(np.isnan(out), len(self.tiers) - 1, out).astype(np.int64)

    def _overlap(self, exc: TableHitError, ids: np.ndarray | None, nudged: bool) -> InputError:
        """A `unique` table's overlap as a problem of the tiering file: the rules, not the
        run, are wrong (a tier the table cannot decide), so it is told like any other input
        problem, at the table, with the rows and the accounts a user can look up."""
        place = self.place
        where = place.policy if place is not None else Location("tiering table")
        rows = [self.table.rows[i] for i in exc.rows]
        lines = [place.rows[i].line if place is not None and i < len(place.rows) else None
                 for i in exc.rows]
        named = "; ".join(
            f"{'line ' + str(line) if line else 'row ' + str(i + 1)}: {row.label}"
            for i, row, line in zip(exc.rows, rows, lines, strict=True))
        shown = exc.accounts[:10]
        names = (", ".join(str(a) for a in ids[shown]) if ids is not None
                 else ", ".join(f"#{int(a) + 1}" for a in shown))
        more = f" and {exc.accounts.size - shown.size} more" if exc.accounts.size > 10 else ""
        when = " (with the score moved by the re-tiering hysteresis)" if nudged else ""
        return InputError([Problem(
            where,
            f"hit policy 'unique' but {exc.accounts.size} account(s) match more than one of "
            f"the rows ({named}){when}: {names}{more}",
            "rows that never match the same account, or hit_policy first or priority")])

    def assign(self, env: dict[str, np.ndarray], mask: np.ndarray,
               current: np.ndarray | None = None, ids: np.ndarray | None = None, *,
               threads: int = 2
               ) -> tuple[np.ndarray, np.ndarray]:
        """(tier index per account, 0 = most important; score). With ``current`` tiers,
        hysteresis keeps an account in its tier unless the move still holds with its score
        moved ``hysteresis`` back toward the current tier. ``ids``: the accounts' ids, which
        an InputError names if the rows of a `unique` table overlap on some accounts."""
        with shared_sorts():  # the indicators, the table and the nudged tables sort once
            return self._assign(env, mask, current, ids, threads)

    def _assign(self, env: dict[str, np.ndarray], mask: np.ndarray, current: np.ndarray | None,
                ids: np.ndarray | None, threads: int) -> tuple[np.ndarray, np.ndarray]:
        # the table reads the score, some fields and maybe some indicators; classify's
        # quadrant then reads its own fields
        score, values = self._weigh(self._normalised(env, mask, self.reread, threads), mask,
                                    keep=self.table.names)
        tier = self._table(env, score, values, mask, ids)
        if current is not None and self.hysteresis > 0:
            # Each account's score moved up and down by the hysteresis, one account at a
            # time: its rank_pct(score), zscore(score), ... are taken against the other
            # accounts' unmoved scores. (Moving every score together would test nothing for
            # a table on ranks: the order, and so every rank, stays the same.)
            # The two nudges read the same sorts (made above) and nothing of each other's:
            # on a big portfolio they run side by side when ``threads`` allows, each the
            # table it gives alone (an overlap of a `unique` table is raised for ``up``
            # first, as one after the other)
            if self.table.hit_policy == "unique":
                # a `unique` table nudges everyone, as its rows may overlap for any
                # account's nudged score
                at = None
                up_score = np.minimum(score + self.hysteresis, 1.0)
                down_score = np.maximum(score - self.hysteresis, 0.0)
            else:
                # Only an account the plain table moves can be kept where it is: one it
                # leaves in its tier stays there whatever the nudges say. So the others keep
                # their unmoved score, and the moved helpers (rank_pct_moved, ...) work out
                # the few that move, each still against every other's unmoved score, and the
                # nudged tables are read at those accounts only: the same outcome for them,
                # the same tiers (a year's re-tiering moves a few in a hundred; all of them
                # were worked out before)
                at = np.flatnonzero(mask & (tier != current))
                if not at.size:
                    return np.where(mask, tier, current), score
                up_score, down_score = score.copy(), score.copy()
                up_score[at] = np.minimum(score[at] + self.hysteresis, 1.0)
                down_score[at] = np.maximum(score[at] - self.hysteresis, 0.0)
            up, down = side_by_side(
                lambda nudged: self._table(env, score, values, mask, ids, nudged=nudged, at=at),
                (up_score, down_score), mask.shape[0], threads)
            # lower index = better tier; keep the current tier if it lies between the
            # outcomes of the nudged scores (``tier`` is the plain table's own new array)
            rows = slice(None) if at is None else at
            was = current[rows]
            tier[rows] = np.where((was >= up) & (was <= down), was, tier[rows])
        return np.where(mask, tier, current if current is not None else tier), score

    def classify(self, env: dict[str, np.ndarray], mask: np.ndarray,
                 current: np.ndarray | None = None, ids: np.ndarray | None = None, *,
                 threads: int = 2, kernels: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``assign`` and ``quadrant`` in one go: (tier, score, quadrant). The same figures,
        but a field both rank (e.g. revenue) is sorted once. ``threads``: how many threads
        the indicator ranks may use (the engine passes ``EngineOptions.threads``, 1 in a
        worker process); ``kernels``: sort in the compiled kernel (the engine passes whether
        its period runs the kernels: see ``compiled_sorts``). The figures depend on
        neither."""
        with shared_sorts(), compiled_sorts(kernels):
            tier, score = self._assign(env, mask, current, ids, threads)
            return tier, score, self.quadrant(env, mask)

    def quadrant(self, env: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        """Index into QUADRANTS: volume x loyalty value matrix of domain.md section 2."""
        n = mask.shape[0]
        lo_v = ~(self.volume(env, n, mask) >= self.volume_cut)  # NaN is not high
        lo_l = ~(self.loyalty(env, n, mask) >= self.loyalty_cut)
        # protect (high, high) 0, manage_risk (high, low) 1, cultivate (low, high) 2, reduce 3
        quadrant = lo_v.astype(np.int64)
        quadrant <<= 1
        quadrant += lo_l
        return quadrant


def compile_tiering(rules: TieringRules, place: Any = None) -> CompiledTiering:
    """Compile once; the expressions were already checked when the file was loaded.
    ``place``: where the table is in its file (``ScenarioSpec.table_place``)."""
    fields = field_types()
    indicators = tuple(
        (name, compile_expr(ind.expr, fields, expect="number"), ind.weight, ind.normalize)
        for name, ind in rules.indicators.items()
    )
    tfields = {**fields, **{name: "number" for name in rules.indicators}}
    index = {t: i for i, t in enumerate(rules.tiers)}
    rows = [Row(compile_expr(r.when, tfields, expect="bool"), float(index[r.tier]),  # type: ignore[arg-type]
                r.priority, r.tier) for r in rules.table.rows]
    table = DecisionTable(rows, rules.table.hit_policy, float(index[rules.table.default]))
    q = rules.quadrants
    return CompiledTiering(
        tiers=tuple(rules.tiers), indicators=indicators, table=table,
        every_months=rules.retier.every_months, hysteresis=rules.retier.hysteresis,
        volume=compile_expr(q.volume, fields, expect="number"),
        loyalty=compile_expr(q.loyalty, fields, expect="number"),
        volume_cut=q.volume_cut, loyalty_cut=q.loyalty_cut, place=place,
    )


@dataclass
class TierAssignment:
    """The tiers of a starting portfolio, per account and summarised per tier."""

    tiers: tuple[str, ...]
    account_id: np.ndarray
    tier: np.ndarray  # index
    score: np.ndarray
    quadrant: np.ndarray  # index into QUADRANTS
    revenue: np.ndarray
    gross_profit: np.ndarray

    def per_account(self) -> Any:
        import pandas as pd

        return pd.DataFrame({
            "account_id": self.account_id,
            "tier": np.array(self.tiers, dtype=object)[self.tier],
            "score": self.score,
            "quadrant": np.array(QUADRANTS, dtype=object)[self.quadrant],
            "revenue": self.revenue,
            "gross_profit": self.gross_profit,
        })

    def summary(self) -> list[dict[str, Any]]:
        """One row per tier: accounts, revenue share, margin share, quadrant counts."""
        rev_total = float(self.revenue.sum()) or 1.0
        gp_total = float(self.gross_profit.sum()) or 1.0
        counts = np.bincount(self.tier, minlength=len(self.tiers))
        rev = np.bincount(self.tier, weights=self.revenue, minlength=len(self.tiers))
        gp = np.bincount(self.tier, weights=self.gross_profit, minlength=len(self.tiers))
        quad = np.zeros((len(self.tiers), len(QUADRANTS)), dtype=np.int64)
        np.add.at(quad, (self.tier, self.quadrant), 1)
        rows = []
        for i, t in enumerate(self.tiers):
            row: dict[str, Any] = {
                "tier": t, "accounts": int(counts[i]),
                "account_share": float(counts[i] / max(1, self.tier.size)),
                "revenue": float(rev[i]), "revenue_share": float(rev[i] / rev_total),
                "gross_profit_share": float(gp[i] / gp_total),
                "mean_score": float(self.score[self.tier == i].mean()) if counts[i] else 0.0,
            }
            row.update({q: int(quad[i, j]) for j, q in enumerate(QUADRANTS)})
            rows.append(row)
        return rows


def tier_portfolio(spec: Any) -> TierAssignment:
    """Tier the starting portfolio of a scenario (a path or a loaded ScenarioSpec): the tiers
    a run starts with, from the same starting state (its decision units, trust and stage),
    so they are taken from the run's own shared starting point."""
    from kamsim.experiment import prepared
    from kamsim.spec.load import ScenarioSpec, load_scenario

    if not isinstance(spec, ScenarioSpec):
        spec = load_scenario(spec)
    prep = prepared(spec)
    k = prep.n_start
    start = prep.accounts.take(slice(0, k)).env()  # (revenue and gross profit derived there)
    return TierAssignment(prep.model.tiers, prep.accounts.account_id[:k], prep.tier[:k],
                          prep.score[:k], prep.quadrant[:k], start["revenue"],
                          start["gross_profit"])


def check_start(spec: Any) -> None:
    """Raise the InputError of a `unique` tiering table whose rows overlap on some accounts
    of the scenario's starting portfolio (what ``kamsim validate`` can know before a run; a
    later re-tiering may still find an overlap, and stops the run with the same problem).
    Other hit policies cannot fail, so their portfolio is not built.

    Only what the first tiering reads is built: the starting portfolio with its starting
    trust and stage, and the decision units only if the tiering reads one of their fields
    (they are drawn with the arrivals' slots, so then the whole starting point is). The
    arrivals, the units and the industry network change no starting account's row, so the
    problem names the same rows and accounts as a run's start finds."""
    if spec.tiering.table.hit_policy != "unique":
        return
    from kamsim.compile import compile_model
    from kamsim.engine.prepare import first_tiering, prepare
    from kamsim.portfolio import build_portfolio

    model = compile_model(spec)
    if model.tiering.reads_units:
        prepare(model)
        return
    start = build_portfolio(spec)
    first_tiering(model, start, start.n, None)
