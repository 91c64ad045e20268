"""Scenarios compared on the same random futures: paired differences with intervals, and a
verdict in words.

Every scenario runs with the same seed and number of replications, so replication ``r`` of
each scenario sees the same random futures (common random numbers). The seed is the
scenario's one seed (it builds a generated portfolio and the decision units too): the first
scenario's unless one is given, it is set as every compared scenario's ``seed``, so two files
that differ only in their seeds compare as the same scenario. The difference between a
scenario and the reference (the first one) is then taken replication by replication, and its
mean gets a Student-t interval over those paired differences: far narrower than comparing two
independent intervals, because the shared luck cancels out.

The relative difference is ``diff / |reference mean|`` (in %; the absolute value keeps its
sign that of the difference when the reference loses money; it is NaN when the reference mean
is 0). It is a ratio of two estimated means, so its interval is Fieller's (:func:`fieller`) on
the same per-replication values: the relative changes ``f`` for which the paired t-test of
``mean(diff - f * reference) == 0`` is not rejected. That is the set the difference's own
t-interval would give were the reference mean known, widened by what the replications do
not know of the reference mean (so it is not symmetric), and exact under the same normal
approximation the t-intervals rest on. The delta method would give a symmetric interval
around the ratio instead, which is what reached past -100% (a tier with no accounts on the
scenario's side: -100.0% (-103.1 to -96.9)); Fieller's gives exactly -100% there, as the
scenario's values vary not at all. When the reference mean is not clearly away from 0 the
ratio has no interval (NaN). A measure that cannot be negative (retention, revenue, cost to
serve) cannot fall by more than 100%, and its interval is cut there; profit and lifetime value
can be negative and are not cut.

When the runs cannot be paired (different starting portfolios: other account ids, or the
same ids with other figures; different seeds or replication counts) the
difference is still reported, with a Welch interval of two independent means, and the verdict
says so.

Some runs differ in more than their luck, and their difference is not the scenarios' own:
runs made by different model versions (:data:`kamsim.results.MODEL_VERSION`: the same
scenario and seed gave other figures before), and runs over different horizons or periods
(totals over 60 months against totals over 12). Their rows are still given (runs of two
model versions are not paired: Welch intervals), and the verdict names what differs instead
of calling a difference clear. A different
discount rate changes the lifetime values only (profit and retention are not discounted): the
verdict stands, and says the lifetime values are not comparable.

Degenerate cases (docs/model.md): with one replication there is no interval (NaN in the rows,
null in JSON) and the verdict tells the difference without calling it clear; a share of a tier
with no starting accounts is NaN, so its differences are NaN and the verdict says n/a.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np

from kamsim import _callable_module
from kamsim.results import BOUNDS, HEADLINES, MODEL_VERSION
from kamsim.stats import defined_mean, fieller, mean_ci, t_two_sided

__all__ = ["compare", "compare_runs", "Comparison", "RunFigures", "per_replication_from_accounts",
           "unique_names", "difference_rows", "is_paired", "one_currency", "not_comparable",
           "discount_differs"]

#: the tier label used for the whole portfolio in tables
ALL = "all"

#: headlines that cannot be negative: they cannot fall by more than 100%
NON_NEGATIVE = frozenset({"retention", "revenue", "cost_to_serve"})


def per_replication_from_accounts(accounts: Any, tiers: Sequence[str]) -> dict[str, np.ndarray]:
    """The headline figures of :meth:`Result.per_replication` rebuilt from an ``accounts``
    table (replication x account rows): name -> array (replications, 1 + tiers), column 0 the
    portfolio. Money totals count every account (arrivals by their first tier); retention and
    lifetime value per account count the starting accounts only, as in ``Result``, and are
    NaN (undefined, not 0) where a tier has no starting accounts."""
    df = accounts
    reps = np.sort(df["replication"].unique())
    rep_ix = np.searchsorted(reps, df["replication"].to_numpy())
    tier_pos = {t: i for i, t in enumerate(tiers)}
    tier_ix = df["initial_tier"].map(tier_pos).to_numpy()
    if np.isnan(tier_ix.astype(float)).any():
        unknown = sorted(set(df["initial_tier"]) - set(tiers))
        raise ValueError(f"accounts table has tiers {unknown} not in {list(tiers)}")
    tier_ix = tier_ix.astype(np.int64)
    nr, nt = reps.shape[0], len(tiers)
    start = df["starting"].to_numpy(dtype=bool)

    def tot(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        m = np.ones(x.shape[0], dtype=bool) if mask is None else mask
        out = np.zeros((nr, nt + 1))
        np.add.at(out, (rep_ix[m], tier_ix[m] + 1), x[m])
        out[:, 0] = out[:, 1:].sum(axis=1)
        return out

    def share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)

    starts = tot(np.ones(len(df)), start)
    res = {"retention": share(tot(df["active"].to_numpy(dtype=float), start), starts)}
    for k in ("revenue", "profit", "cost_to_serve"):
        res[k] = tot(df[k].to_numpy(dtype=float))
    res["clv"] = share(tot(df["clv"].to_numpy(dtype=float), start), starts)
    return res


@dataclass
class RunFigures:
    """What a comparison needs of one run, whether fresh or loaded from the store."""

    name: str
    seed: int
    replications: int
    tiers: tuple[str, ...]
    per_rep: dict[str, np.ndarray]
    starting_ids: tuple[str, ...]  # sorted: the same accounts, whatever the file's order
    confidence: float = 0.95
    currency: str = "EUR"
    run_id: str | None = None
    source: Any = None  # the Result or the store's RunRecord
    #: :func:`kamsim.portfolio.fingerprint` of the starting portfolio; None for a run stored
    #: before kamsim recorded it (its portfolio is then known by its ids only)
    portfolio: str | None = None
    #: what the totals are over and how lifetime value is discounted; None where a stored
    #: run does not tell (then not checked)
    horizon_months: float | None = None
    period: str | None = None
    discount_rate: float | None = None
    #: :data:`kamsim.results.MODEL_VERSION` of the kamsim that made the run (1: recorded
    #: before it was kept)
    model_version: int = MODEL_VERSION

    @classmethod
    def from_result(cls, result: Any, run_id: str | None = None) -> RunFigures:
        per = result.per_replication()
        return cls(name=result.scenario, seed=int(result.seed),
                   replications=int(result.replications), tiers=tuple(result.tiers),
                   per_rep={k: per[k] for k in HEADLINES},
                   starting_ids=tuple(sorted(map(str, result.account_ids[: result.n_start]))),
                   confidence=result.confidence, currency=result.currency, run_id=run_id,
                   source=result, portfolio=result.portfolio or None,
                   horizon_months=result.outputs[0].periods * result.outputs[0].dt,
                   **_time_and_discount(result.resolved))

    @classmethod
    def from_tables(cls, summary: dict[str, Any], accounts: Any, *, run_id: str | None = None,
                    source: Any = None, resolved: dict[str, Any] | None = None) -> RunFigures:
        """From a run's ``summary`` dict and ``accounts`` table (a stored run, a folder);
        its period and discount rate from its ``resolved`` scenario (by default the
        ``source``'s, a stored run's)."""
        if resolved is None:
            resolved = getattr(source, "resolved", None) or {}
        tiers = tuple(summary["by_tier"])
        start = accounts[accounts["replication"] == accounts["replication"].min()]
        ids = tuple(sorted(map(str, start.loc[start["starting"].astype(bool), "account_id"])))
        return cls(name=str(summary["scenario"]), seed=int(summary["seed"]),
                   replications=int(summary["replications"]), tiers=tiers,
                   per_rep=per_replication_from_accounts(accounts, tiers), starting_ids=ids,
                   confidence=float(summary.get("confidence", 0.95)),
                   currency=str(summary.get("currency", "EUR")), run_id=run_id, source=source,
                   # (absent from the summaries of runs stored by older versions)
                   portfolio=summary.get("portfolio_fingerprint"),
                   horizon_months=summary.get("horizon_months"),
                   model_version=int(summary.get("model_version", 1)),
                   **_time_and_discount(resolved))

    def same_portfolio(self, other: RunFigures) -> bool:
        """Whether both runs started from the same portfolio: the same account ids, and,
        where both runs know it, the same fingerprint of its contents (a generated
        portfolio has the ids A0001... whatever its seed). A run stored before the
        fingerprint was recorded is judged by its ids alone."""
        if self.starting_ids != other.starting_ids:
            return False
        return self.portfolio is None or other.portfolio is None or (
            self.portfolio == other.portfolio)


def _time_and_discount(resolved: dict[str, Any]) -> dict[str, Any]:
    """``period`` and ``discount_rate`` of a resolved scenario (None where it has none)."""
    sc = resolved.get("scenario") or {}
    rate = sc.get("discount_rate")
    return {"period": sc.get("period"), "discount_rate": None if rate is None else float(rate)}


def _differ(a: Any, b: Any) -> bool:
    """Whether two runs' values of a setting differ, where both runs tell it."""
    return a is not None and b is not None and a != b


def not_comparable(ref: RunFigures, run: RunFigures) -> list[str]:
    """Why a difference between ``run`` and ``ref`` is not the scenarios' own (empty when it
    is): made by different model versions, or totals over another horizon or period."""
    why = []
    if run.model_version != ref.model_version:
        why.append(f"made by different model versions ({ref.model_version} and "
                   f"{run.model_version})")
    if _differ(ref.horizon_months, run.horizon_months):
        why.append(f"horizons differ ({ref.horizon_months:g} and {run.horizon_months:g} "
                   "months)")
    if _differ(ref.period, run.period):
        why.append(f"periods differ ({ref.period} and {run.period})")
    return why


def discount_differs(ref: RunFigures, run: RunFigures) -> str:
    """``discount rates differ (...)`` when they do (lifetime values are then not
    comparable), else ''."""
    if not _differ(ref.discount_rate, run.discount_rate):
        return ""
    return (f"discount rates differ ({100 * cast(float, ref.discount_rate):g}% and "
            f"{100 * cast(float, run.discount_rate):g}%)")


def _welch(a: np.ndarray, b: np.ndarray, confidence: float,
           bounds: tuple[float, float] | None = None) -> dict[str, float]:
    """Mean of ``b - a`` for independent samples, with a Welch t-interval.

    As in :func:`mean_ci`, NaN (undefined) values are left out, ``n`` is the smaller count
    of defined values, and with fewer than two on a side there is no interval (NaN): one
    replication says nothing of its spread. When both sides vary not at all the interval
    is the difference itself (nothing to be uncertain about in what was measured)."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    na, nb = a.shape[0], b.shape[0]
    nan = float("nan")
    diff = float(b.mean() - a.mean()) if na and nb else nan
    if na < 2 or nb < 2:
        return {"mean": diff, "ci_low": nan, "ci_high": nan, "n": min(na, nb)}
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return {"mean": diff, "ci_low": diff, "ci_high": diff, "n": min(na, nb)}
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = t_two_sided(confidence, dof) * se
    low, high = diff - half, diff + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": diff, "ci_low": low, "ci_high": high, "n": min(na, nb)}


def _relative(a: np.ndarray, b: np.ndarray, paired: bool, confidence: float,
              non_negative: bool) -> tuple[float, float]:
    """Ends of the interval (in %) of the relative difference ``(mean b - mean a) / |mean a|``
    (see the module's docstring): Fieller's on the replications the difference used (both
    sides defined when paired; each side's defined values otherwise, with the degrees of
    freedom of the difference's Welch interval). NaN without an interval: fewer than two
    replications, or a reference mean not clearly away from 0."""
    nan = float("nan")
    if paired:
        ok = ~(np.isnan(a) | np.isnan(b))
        x, y = a[ok], b[ok] - a[ok]  # the reference, and the paired differences
        n = x.shape[0]
        if n < 2:
            return nan, nan
        cov = np.cov(y, x, ddof=1) / n  # of the two means
        num, v_num, v_cov, v_den = float(y.mean()), cov[0, 0], cov[0, 1], cov[1, 1]
        dof = n - 1.0
    else:  # independent means: diff = mean b - mean a, with var(b)/nb + var(a)/na
        x, z = a[~np.isnan(a)], b[~np.isnan(b)]
        if x.shape[0] < 2 or z.shape[0] < 2:
            return nan, nan
        va, vb = x.var(ddof=1) / x.shape[0], z.var(ddof=1) / z.shape[0]
        num, v_num, v_cov, v_den = float(z.mean() - x.mean()), va + vb, -va, va
        # the degrees of freedom of the difference's Welch interval (none vary: q is moot)
        spread = va**2 / (x.shape[0] - 1) + vb**2 / (z.shape[0] - 1)
        dof = (va + vb) ** 2 / spread if spread > 0 else 1.0
    den = float(x.mean())
    lo, hi = fieller(num, den, float(v_num), float(v_cov), float(v_den),
                     t_two_sided(confidence, dof))
    if den < 0:  # over |den|: the relative difference is minus the ratio
        lo, hi = -hi, -lo
    # (a NaN end compares False: no interval stays NaN)
    return (max(100 * lo, -100.0) if non_negative and lo == lo else 100 * lo), 100 * hi


def _num(v: float, sign: bool = False) -> str:
    """One decimal as the tables round it (:func:`~kamsim.report.terminal.decimal`: no
    -0.0), with a typographic minus (and a plus when ``sign``)."""
    from kamsim.report.terminal import decimal

    return decimal(v, sign=sign).replace("-", "\u2212")


def unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} #{seen[n]}")
    return out


def one_currency(names: Sequence[str], currencies: Sequence[str]) -> str:
    """The one currency runs ``names`` are in (their service rules' ``currency``), else a
    RunError: kamsim converts no amounts, so a difference of amounts in two currencies, or
    one axis for both, would be a number in no currency at all."""
    if len(set(currencies)) > 1:
        from kamsim.errors import RunError

        each = ", ".join(f"{n} in {c}" for n, c in zip(unique_names(names), currencies,
                                                         strict=True))
        raise RunError(f"runs in different currencies cannot be compared ({each}); kamsim "
                       "converts no amounts: give them one currency in their service rules")
    return currencies[0]


@dataclass
class Comparison:
    """Runs side by side, each against the first (the reference)."""

    runs: list[RunFigures]
    paired: list[bool] = field(default_factory=list)  # per run: paired with the reference?
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return unique_names([r.name for r in self.runs])

    @property
    def results(self) -> list[Any]:
        """The Result (fresh run) or stored record behind each run, in order."""
        return [r.source for r in self.runs]

    @property
    def confidence(self) -> float:
        return self.runs[0].confidence

    def table(self) -> Any:
        """One row per scenario (not the reference) x tier (``all`` first) x headline."""
        import pandas as pd

        cols = ["scenario", "tier", "metric", "reference_mean", "mean", "diff", "diff_low",
                "diff_high", "rel", "rel_low", "rel_high", "n"]
        return pd.DataFrame(self.rows, columns=cols)

    def _row(self, scenario: str, tier: str, metric: str) -> dict[str, Any]:
        for r in self.rows:
            if r["scenario"] == scenario and r["tier"] == tier and r["metric"] == metric:
                return r
        raise KeyError((scenario, tier, metric))

    def verdict(self) -> list[str]:
        """One sentence per scenario against the reference: profit in % (or money when the
        reference's profit is not clearly above 0: it loses money, or its mean has no
        relative interval), retention of the first tier in percentage points.

        A difference is called clear only when its interval excludes zero. Without an
        interval (one replication) the difference is told as measured, with a note that it
        has none; a retention that is undefined (no accounts of the tier at the start, on
        either side) is said to be so, and not compared."""
        from kamsim.report.terminal import percent_label

        names = self.names
        ref = names[0]
        conf = percent_label(self.confidence)
        lines = []
        for i, name in enumerate(names[1:], start=1):
            apart = not_comparable(self.runs[0], self.runs[i])
            if apart:  # a difference of another kind than the scenarios': not judged
                lines.append(f"{name} vs {ref}: no verdict, {'; '.join(apart)}: "
                             + ("part of any difference is kamsim's own change, not the "
                                "scenarios'; run both with this kamsim to compare them"
                                if apart[0].startswith("made by") else
                                "their totals are not over the same time"))
                continue
            p = self._row(name, ALL, "profit")
            # in % of the reference's profit, unless that is not clearly above 0 (no
            # relative interval while the difference has one): then in money
            if p["reference_mean"] > 0 and not (p["rel_low"] != p["rel_low"]
                                                 and p["diff_low"] == p["diff_low"]):
                lo, hi, d = p["rel_low"], p["rel_high"], p["rel"]
                fmt: Callable[[float], str] = lambda v: f"{abs(v):.1f}%"  # noqa: E731
                bare: Callable[[float], str] = lambda v: f"{abs(v):.1f}"  # noqa: E731
                signed: Callable[[float], str] = lambda v: _num(v, True) + "%"  # noqa: E731
            else:
                from kamsim.report.terminal import money

                cur = self.runs[0].currency
                lo, hi, d = p["diff_low"], p["diff_high"], p["diff"]
                fmt = bare = cast(Callable[[float], str], lambda v, c=cur: money(abs(v), c))
                signed = cast(Callable[[float], str],
                              lambda v, c=cur: ("+" if v >= 0 else "\u2212") + money(abs(v), c))
            no_interval = []  # what is told without an interval
            if lo != lo:  # NaN: fewer than two replications
                no_interval.append("profit")
                if d == 0:
                    text = f"{name} earns the same profit as {ref}"
                else:
                    text = (f"{name} earns {fmt(d)} {'more' if d > 0 else 'less'} profit "
                            f"than {ref}")
            elif lo > 0 or hi < 0:
                word = "more" if d > 0 else "less"
                a, b = sorted((abs(lo), abs(hi)))
                text = (f"{name} earns {fmt(d)} {word} profit than {ref} "
                        f"({conf} CI {bare(a)}–{fmt(b)})")
            else:
                text = (f"{name} vs {ref}: no clear difference in profit "
                        f"({signed(lo)} to {signed(hi)})")
            tier = self.runs[0].tiers[0]
            try:
                r = self._row(name, tier, "retention")
            except KeyError:  # the scenario has no tier of that name: nothing to compare
                r = None
            if r is not None:
                d, lo, hi = (100 * r[k] for k in ("diff", "diff_low", "diff_high"))
                if d != d:
                    none = [n for n, m in ((ref, r["reference_mean"]), (name, r["mean"]))
                            if m != m]
                    why = (f"no {tier} accounts at the start in {' and '.join(none)}" if none
                           else f"never {tier} accounts in both in the same replication")
                    text += f"; {tier}-account retention: n/a ({why})"
                elif lo != lo:
                    no_interval.append(f"{tier}-account retention")
                    text += f"; {tier}-account retention {_num(d, True)} points"
                elif lo > 0 or hi < 0:
                    text += (f"; {tier}-account retention {_num(d, True)} points "
                             f"({_num(lo)}–{_num(hi)})")
                else:
                    text += (f"; {tier}-account retention: no clear difference "
                             f"({_num(lo, True)} to {_num(hi, True)} points)")
            if no_interval:
                if p["n"] < 2:
                    text += (f" ({p['n']} replication: no confidence interval; run more "
                             "replications)")
                else:  # the tier had starting accounts in one replication only
                    text += (f" ({' and '.join(no_interval)} measured in 1 replication: no "
                             "confidence interval)")
            if not self.paired[i]:
                text += f" [{self._why_unpaired(i)}: differences are not paired]"
            rates = discount_differs(self.runs[0], self.runs[i])
            if rates:  # only lifetime value is discounted
                text += f" [{rates}: lifetime values are not comparable]"
            lines.append(text)
        return lines

    @cached_property
    def caveats(self) -> dict[str, tuple[list[str], str]]:
        """Per scenario (not the reference): why its verdict is withheld
        (:func:`not_comparable`, empty if it is not) and whether the discount rates differ
        (:func:`discount_differs`, '' if not). Worked out once: :meth:`judged` reads it for
        every row of a table, the notes under the table (``report.terminal.difference_notes``)
        say it."""
        ref = self.runs[0]
        return {name: (not_comparable(ref, run), discount_differs(ref, run))
                for name, run in zip(self.names[1:], self.runs[1:], strict=True)}

    def judged(self, scenario: str, metric: str) -> bool:
        """Whether a difference of ``scenario``'s ``metric`` against the reference is the
        scenarios' own, to be read as good or bad news: not when the verdict gives none
        (:func:`not_comparable`), nor of lifetime value when the discount rates differ
        (:func:`discount_differs`). The report greys the rest, as compare's notes say why."""
        why, rates = self.caveats[scenario]
        return not why and not (metric == "clv" and rates)

    def _why_unpaired(self, i: int) -> str:
        a, b = self.runs[0], self.runs[i]
        if a.model_version != b.model_version:
            return not_comparable(a, b)[0]
        if not a.same_portfolio(b):
            return "portfolios differ"
        if a.seed != b.seed:
            return "seeds differ"
        return "replication counts differ"

    def to_json(self) -> dict[str, Any]:
        """Plain data for scripts: the runs, the difference rows and the verdict."""
        names = self.names
        return {
            "reference": names[0],
            "confidence": self.confidence,
            "runs": [{"scenario": n, "run_id": r.run_id, "seed": r.seed,
                      "replications": r.replications, "horizon_months": r.horizon_months,
                      "period": r.period, "discount_rate": r.discount_rate,
                      "model_version": r.model_version, "paired": p,
                      # why its differences are not judged (the verdict says none): a list
                      "not_comparable": not_comparable(self.runs[0], r)}
                     for n, r, p in zip(names, self.runs, self.paired, strict=True)],
            # JSON has no NaN: an undefined figure or a missing interval is null
            "rows": [{k: (None if isinstance(v, float) and v != v else v)
                      for k, v in r.items()} for r in self.rows],
            "verdict": self.verdict(),
        }


def compare_runs(runs: Sequence[RunFigures]) -> Comparison:
    """Differences of every run against the first, per headline and per starting tier."""
    if len(runs) < 2:
        raise ValueError(f"a comparison needs at least two runs (got {len(runs)})")
    one_currency([r.name for r in runs], [r.currency for r in runs])
    ref = runs[0]
    names = unique_names([r.name for r in runs])
    paired = [True]
    rows: list[dict[str, Any]] = []
    for name, run in zip(names[1:], runs[1:], strict=True):
        paired.append(is_paired(ref, run))
        rows += difference_rows(ref, run, name)
    return Comparison(runs=list(runs), paired=paired, rows=rows)


def is_paired(ref: RunFigures, run: RunFigures) -> bool:
    """Whether replication ``r`` of ``run`` saw the same random future as that of ``ref``
    (under the same model: another model version draws other futures from the same seed).
    Runs over other horizons are paired still, as a sweep's points over them are (the same
    seed, the same draws month by month); compare gives them no verdict instead
    (:func:`not_comparable`)."""
    return (run.same_portfolio(ref) and run.seed == ref.seed
            and run.replications == ref.replications
            and run.model_version == ref.model_version)


def difference_rows(ref: RunFigures, run: RunFigures, name: str) -> list[dict[str, Any]]:
    """The rows of ``run`` (called ``name``) against ``ref``: per tier (``all`` first) and
    headline, the means and the difference with its interval (paired by replication when
    the runs are, Welch otherwise), absolute and relative."""
    pair = is_paired(ref, run)
    rows: list[dict[str, Any]] = []
    # tiers are matched by name; a tier missing on one side is left out
    tiers = [(ALL, 0, 0)] + [(t, i + 1, run.tiers.index(t) + 1)
                             for i, t in enumerate(ref.tiers) if t in run.tiers]
    for tier, ci, cj in tiers:
        for metric in HEADLINES:
            a = ref.per_rep[metric][:, ci]
            b = run.per_rep[metric][:, cj]
            # a share's difference cannot leave [-1, 1]
            lim = (-1.0, 1.0) if metric in BOUNDS else None
            d = (mean_ci(b - a, ref.confidence, lim) if pair
                 else _welch(a, b, ref.confidence, lim))
            base = defined_mean(a)
            if base != 0:  # NaN (no reference accounts) gives NaN too
                # over |base|, so the sign of rel is the sign of the difference
                rel = 100 * d["mean"] / abs(base)
                rl, rh = _relative(a, b, pair, ref.confidence, metric in NON_NEGATIVE)
            else:
                rel = rl = rh = float("nan")
            rows.append({"scenario": name, "tier": tier, "metric": metric,
                         "reference_mean": base, "mean": defined_mean(b),
                         "diff": d["mean"], "diff_low": d["ci_low"],
                         "diff_high": d["ci_high"], "rel": rel, "rel_low": rl,
                         "rel_high": rh, "n": d["n"]})
    return rows


def _load_stored(ref: str, store: str | Path | None) -> list[RunFigures]:
    """The run ``ref`` names in the store, or every run of the group it names (oldest
    first, as ``kamsim report`` takes a group); the store module is imported only when
    needed."""
    from kamsim import store as store_mod

    st = store_mod.open(store, read_only=True)
    try:
        out = []
        for rec in st.get_many(ref):
            fig = RunFigures.from_tables(rec.summary, rec.tables()["accounts"],
                                         run_id=rec.run_id, source=rec)
            # a sweep's points share their scenario's name: named by their labels, as the
            # report names them, not "baseline #2"
            label = rec.meta.get("label")
            out.append(replace(fig, name=str(label)) if label else fig)
        return out
    finally:
        close = getattr(st, "close", None)
        if close:
            close()


def _is_scenario(s: Any) -> bool:
    """Whether ``s`` is a scenario to run (a ScenarioSpec or a file name), not a run id. A
    .yaml name that is not a file counts as one (compare then says it is missing)."""
    from kamsim.spec.load import ScenarioSpec

    return isinstance(s, ScenarioSpec) or (isinstance(s, str | Path) and (
        Path(s).is_file() or Path(s).suffix in (".yaml", ".yml")))


def compare(scenarios: Sequence[Any], *, replications: int | None = None,
            seed: int | None = None, workers: int | None = None, dask: str | None = None,
            overrides: Sequence[str] = (), progress: Callable[[float, int], None] | None = None,
            store: str | Path | None = None) -> Comparison:
    """Run (or load) every scenario and compare each with the first.

    ``scenarios`` are ScenarioSpecs, scenario files, or run ids or group ids (each of the
    group's runs) from the store at ``store`` (a string that is not an existing file). Fresh runs all use the same ``seed`` and
    ``replications`` (default: those of the first scenario, or of the first stored run), so
    their differences are paired: ``seed`` is set as each scenario's seed (as ``seed: N`` in
    its file), so it also builds their portfolios and decision units. ``overrides``
    (``key=value``) apply to scenario files; with stored runs only, ``seed``,
    ``replications`` and ``overrides`` would change nothing and are refused (RunError)
    before any run is loaded.
    ``progress(done, total)`` counts replications over all fresh runs (see
    :func:`kamsim.simulate` for the fractions of one in progress)."""
    from kamsim.errors import InputError, Problem, RunError
    from kamsim.experiment import simulate_many
    from kamsim.spec.load import ScenarioSpec, load_scenario

    if not scenarios or (len(scenarios) == 1 and _is_scenario(scenarios[0])):
        # (one stored id may be a group of runs: counted once loaded)
        raise RunError(f"compare needs at least two scenarios or runs (got {len(scenarios)})")
    given = [what for what, v in (("seed", seed is not None),
                                  ("replications", replications is not None),
                                  ("overrides", bool(overrides))) if v]
    if given and not any(_is_scenario(s) for s in scenarios):
        raise RunError(f"{' and '.join(given)} given, but every run compared is a stored run, "
                       "which keeps its own (they apply to scenario files only)")
    items: list[Any] = []
    problems: list[Problem] = []  # of every scenario file, reported together
    for s in scenarios:
        if isinstance(s, ScenarioSpec):
            items.append(s)
        elif Path(s).is_file():
            try:
                items.append(load_scenario(s, list(overrides)))
            except InputError as exc:
                problems += exc.problems
        elif isinstance(s, str | Path) and Path(s).suffix in (".yaml", ".yml"):
            raise RunError(f"{s}: no such scenario file")
        else:
            items.extend(_load_stored(str(s), store))
    if problems:  # a rule file two scenarios share is reported once
        raise InputError(dict.fromkeys(problems))
    if len(items) < 2:  # one stored run (or a group of one)
        raise RunError(f"compare needs at least two scenarios or runs (got 1: "
                       f"{scenarios[0]})")
    # before anything runs: a comparison across currencies is refused whatever the results
    one_currency([i.name for i in items],
                 [i.currency if isinstance(i, RunFigures) else i.service.currency
                  for i in items])
    first = items[0]
    if isinstance(first, RunFigures):
        seed = first.seed if seed is None else seed
        replications = first.replications if replications is None else replications
    else:
        seed = first.scenario.seed if seed is None else seed
        replications = first.scenario.replications if replications is None else replications
    # every fresh scenario's replications in one study: one pool of workers (or one Dask
    # submission) stays busy to the end however few replications each scenario has, and
    # each Result is the one simulate() would give
    fresh = [i for i in items if not isinstance(i, RunFigures)]
    results = iter(simulate_many(fresh, replications=replications, seed=seed,
                                 workers=workers, dask=dask, progress=progress)
                   if fresh else [])
    runs = [i if isinstance(i, RunFigures) else RunFigures.from_result(next(results))
            for i in items]
    return compare_runs(runs)


_callable_module(__name__, compare)  # kamsim.compare(...) whichever was imported first
