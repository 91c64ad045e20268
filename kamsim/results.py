"""Results of a simulation: tidy tables and a summary with confidence intervals.

Headline figures per replication (then mean and interval over replications):
- ``retention``: share of the starting accounts still active at the horizon;
- ``revenue``, ``profit``, ``cost_to_serve``: totals over the horizon, all accounts;
- ``clv``: discounted lifetime value (over the horizon) per starting account;
- ``equity``: customer equity, the sum of every account's discounted value.
``by_tier`` groups accounts by the tier they started in (arrivals by their first tier).

A share of a tier with no starting accounts (retention, lifetime value per account) is
undefined: NaN per replication, left out of the mean and interval (``n`` counts the
replications where it is defined), and ``None`` in the summary when it has no mean or
interval, as JSON has no NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kamsim.engine.record import EVENT_KINDS, TS_FIELDS, ReplicationOutput
from kamsim.spec.models import CHURN_CAUSES
from kamsim.stats import mean_ci

__all__ = ["Result", "HEADLINES", "MODEL_VERSION"]

#: The version of the model's results, recorded in every run's summary (``model_version``):
#: raised whenever a change to kamsim makes the same scenario and seed give other figures, so
#: that ``kamsim compare`` and ``kamsim report`` do not pair a run with one the older model
#: made and show the model's change as a difference between scenarios. A summary without it
#: is of a run recorded before it was kept: version 1 (docs/model.md, Comparing runs).
MODEL_VERSION = 2

HEADLINES = ("retention", "revenue", "profit", "cost_to_serve", "clv")
#: the range a headline cannot leave, which bounds its interval (a share of accounts)
BOUNDS: dict[str, tuple[float, float]] = {"retention": (0.0, 1.0)}


def _per_rep(out: ReplicationOutput, n_start: int, n_tiers: int) -> dict[str, np.ndarray]:
    """Headline figures of one replication: index 0 = portfolio, 1.. = tiers."""
    a = out.accounts
    start = a["slot"] < n_start
    tier = a["initial_tier"]
    res: dict[str, np.ndarray] = {}

    def tot(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        m = np.ones_like(tier, dtype=bool) if mask is None else mask
        return np.r_[x[m].sum(), np.bincount(tier[m], weights=x[m], minlength=n_tiers)]

    ones = np.ones(tier.shape[0])
    starts = tot(ones, start)
    # a share of no accounts is undefined (NaN), not 0: 0% retention would be a finding
    res["retention"] = np.divide(tot(a["active"].astype(float), start), starts,
                                 out=np.full(n_tiers + 1, np.nan), where=starts > 0)
    for k in ("revenue", "profit", "cost_to_serve", "discounts", "bad_debt", "acquisition"):
        res[k] = tot(a[k])
    res["clv"] = np.divide(tot(a["clv"], start), starts, out=np.full(n_tiers + 1, np.nan),
                           where=starts > 0)
    res["equity"] = tot(a["clv"])
    res["accounts_end"] = tot(a["active"].astype(float))
    res["new_accounts"] = tot(ones, ~start)
    return res


@dataclass
class Result:
    """What :func:`kamsim.simulate` returns."""

    scenario: str
    seed: int
    replications: int
    tiers: tuple[str, ...]
    stages: tuple[str, ...]
    currency: str
    account_ids: np.ndarray  # per slot
    n_start: int
    outputs: list[ReplicationOutput]
    confidence: float = 0.95
    resolved: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    #: the decision units' roles, in the order of their index (the event log's
    #: ``key_person_left`` and ``other_person_left`` code)
    roles: tuple[str, ...] = ()
    #: :func:`kamsim.portfolio.fingerprint` of the starting portfolio (what pairing checks)
    portfolio: str = ""

    # -------------------------------------------------------------- summary

    def per_replication(self) -> dict[str, np.ndarray]:
        """name -> array (replications, 1 + tiers); column 0 is the whole portfolio."""
        reps = [_per_rep(o, self.n_start, len(self.tiers)) for o in self.outputs]
        return {k: np.vstack([r[k] for r in reps]) for k in reps[0]}

    def summary(self) -> dict[str, Any]:
        """Headline figures with confidence intervals, overall and ``by_tier``: per figure
        ``mean``, ``ci_low``, ``ci_high`` and ``n`` (the replications where it is defined);
        ``None`` where there is no value (no accounts) or no interval (one replication)."""
        per = self.per_replication()
        out: dict[str, Any] = {
            "scenario": self.scenario, "seed": self.seed, "replications": self.replications,
            "horizon_months": self.outputs[0].periods * self.outputs[0].dt,
            "confidence": self.confidence, "currency": self.currency,
            "portfolio_fingerprint": self.portfolio or None, "model_version": MODEL_VERSION,
        }
        for name in (*HEADLINES, "equity", "accounts_end", "new_accounts"):
            out[name] = _stat(per[name][:, 0], self.confidence, BOUNDS.get(name))
        out["by_tier"] = {
            tier: {name: _stat(per[name][:, i + 1], self.confidence, BOUNDS.get(name))
                   for name in (*HEADLINES, "equity")}
            for i, tier in enumerate(self.tiers)
        }
        causes = np.sum([o.churn_causes.sum(axis=(0, 1)) for o in self.outputs], axis=0)
        out["churn_causes"] = {c: float(causes[i]) / self.replications
                               for i, c in enumerate(CHURN_CAUSES)}
        util = np.mean([o.utilisation.mean(axis=0) for o in self.outputs], axis=0)
        out["utilisation"] = dict(zip(("account_managers", "executives", "specialists",
                                       "support"), map(float, util), strict=True))
        return out

    # -------------------------------------------------------------- tables
    #
    # Each table is built as plain numpy columns (``table_columns``), which the run store
    # hands to DuckDB without pandas; the DataFrame methods wrap the same columns.

    def _timeseries_columns(self) -> dict[str, np.ndarray]:
        nt = len(self.tiers)
        tiers = np.array(self.tiers, dtype=object)
        parts = []
        for o in self.outputs:
            p = o.periods
            data: dict[str, np.ndarray] = {
                "replication": np.repeat(o.replication, p * nt),
                "period": np.repeat(np.arange(p), nt),
                "month": np.repeat(np.arange(p) * o.dt, nt),
                "tier": np.tile(tiers, p),
            }
            for k in TS_FIELDS:
                data[k] = o.ts[k].ravel()
            parts.append(data)
        cols = _concat(parts)
        act = cols["active"]
        for name in ("trust", "coverage", "service_ratio"):
            total = cols.pop(f"{name}_sum")
            cols[f"mean_{name}"] = np.divide(total, act, out=np.zeros(act.shape[0]),
                                             where=act > 0)
        return cols

    def timeseries(self) -> Any:
        """One row per replication x period x tier with every per-period sum, plus the mean
        trust, coverage and service ratio of the tier's active accounts."""
        return _frame(self._timeseries_columns())

    def _stage_mix_columns(self) -> dict[str, np.ndarray]:
        parts = []
        for o in self.outputs:
            p, nt, ns = o.stage_counts.shape
            idx = np.indices((p, nt, ns)).reshape(3, -1)
            parts.append({
                "replication": _full(o.replication, idx.shape[1]), "period": idx[0],
                "month": idx[0] * o.dt, "tier": np.array(self.tiers, dtype=object)[idx[1]],
                "stage": np.array(self.stages, dtype=object)[idx[2]],
                "accounts": o.stage_counts.ravel()})
        return _concat(parts)

    def stage_mix(self) -> Any:
        return _frame(self._stage_mix_columns())

    def _stage_flows_columns(self) -> dict[str, np.ndarray]:
        labels = np.array([*self.stages, "new/lost"], dtype=object)
        parts = []
        for o in self.outputs:
            nz = np.nonzero(o.transitions)
            frm = labels[nz[2]]
            to = labels[nz[3]]
            frm = np.where(nz[2] == len(self.stages), "new", frm)
            to = np.where(nz[3] == len(self.stages), "lost", to)
            parts.append({
                "replication": _full(o.replication, nz[0].shape[0]), "period": nz[0],
                "tier": np.array(self.tiers, dtype=object)[nz[1]],
                "from_stage": frm, "to_stage": to, "accounts": o.transitions[nz]})
        return _concat(parts)

    def stage_flows(self) -> Any:
        """Accounts moving between stages per period and tier (``new`` and ``lost`` are the
        ends of the ladder); rows with no movement are left out."""
        return _frame(self._stage_flows_columns())

    def _churn_columns(self) -> dict[str, np.ndarray]:
        parts = []
        for o in self.outputs:
            nz = np.nonzero(o.churn_causes)
            parts.append({
                "replication": _full(o.replication, nz[0].shape[0]), "period": nz[0],
                "tier": np.array(self.tiers, dtype=object)[nz[1]],
                "cause": np.array(CHURN_CAUSES, dtype=object)[nz[2]],
                "accounts": o.churn_causes[nz]})
        return _concat(parts)

    def churn(self) -> Any:
        return _frame(self._churn_columns())

    def _utilisation_columns(self) -> dict[str, np.ndarray]:
        names = ("account_managers", "executives", "specialists", "support")
        parts = []
        for o in self.outputs:
            idx = np.indices(o.utilisation.shape).reshape(2, -1)
            parts.append({
                "replication": _full(o.replication, idx.shape[1]), "period": idx[0],
                "month": idx[0] * o.dt, "resource": np.array(names, dtype=object)[idx[1]],
                "utilisation": o.utilisation.ravel()})
        return _concat(parts)

    def utilisation(self) -> Any:
        return _frame(self._utilisation_columns())

    def _accounts_columns(self) -> dict[str, np.ndarray]:
        parts = []
        cause = np.array([*CHURN_CAUSES, ""], dtype=object)
        for o in self.outputs:
            a = o.accounts
            cols: dict[str, np.ndarray] = {
                "replication": _full(o.replication, a["slot"].shape[0]),
                "account_id": self.account_ids[a["slot"]],
                **{k: v for k, v in a.items() if k != "slot"}}
            for col, names in (("initial_tier", self.tiers), ("tier", self.tiers),
                               ("initial_stage", self.stages), ("stage", self.stages)):
                cols[col] = np.array(names, dtype=object)[a[col]]
            cols["churn_cause"] = cause[np.where(a["churn_cause"] < 0, len(CHURN_CAUSES),
                                                 a["churn_cause"])]
            cols["starting"] = a["slot"] < self.n_start
            parts.append(cols)
        return _concat(parts)

    def accounts(self) -> Any:
        """One row per replication x account that was ever active."""
        return _frame(self._accounts_columns())

    def _events_columns(self) -> dict[str, np.ndarray] | None:
        parts = []
        ids = np.append(self.account_ids, "-")
        kinds = np.array(EVENT_KINDS, dtype=object)
        for o in self.outputs:
            if o.events is None:
                continue
            e = o.events
            acc = np.where(e["account"] < 0, len(self.account_ids), e["account"])
            parts.append({
                "replication": _full(o.replication, e["period"].shape[0]),
                "period": e["period"], "account_id": ids[acc], "kind": kinds[e["kind"]],
                "code": e["code"], "detail": _event_detail(e, self.stages, self.roles,
                                                            self.tiers),
                "value": e["value"]})
        return _concat(parts) if parts else None

    def events(self) -> Any:
        """The event log (empty when the scenario turned it off)."""
        cols = self._events_columns()
        if cols is None:
            import pandas as pd

            return pd.DataFrame(columns=["replication", "period", "account_id", "kind", "code",
                                         "detail", "value"])
        return _frame(cols)

    def table_columns(self) -> dict[str, dict[str, np.ndarray] | None]:
        """Every table of :meth:`to_frames` as numpy columns by name (the same values, no
        pandas); ``None`` for a table with no rows (the events when the log was off)."""
        return {"timeseries": self._timeseries_columns(),
                "accounts": self._accounts_columns(), "events": self._events_columns(),
                "stage_mix": self._stage_mix_columns(),
                "stage_flows": self._stage_flows_columns(), "churn": self._churn_columns(),
                "utilisation": self._utilisation_columns()}

    def to_frames(self) -> dict[str, Any]:
        """Every table as a pandas DataFrame, by name."""
        return {"timeseries": self.timeseries(), "accounts": self.accounts(),
                "events": self.events(), "stage_mix": self.stage_mix(),
                "stage_flows": self.stage_flows(), "churn": self.churn(),
                "utilisation": self.utilisation()}


def _stat(values: np.ndarray, confidence: float,
          bounds: tuple[float, float] | None) -> dict[str, Any]:
    """:func:`mean_ci` as plain data for a summary: ``None`` for NaN."""
    return {k: None if isinstance(v, float) and v != v else v
            for k, v in mean_ci(values, confidence, bounds).items()}


def _full(value: Any, n: int) -> np.ndarray:
    """A column of ``n`` copies of ``value`` with the dtype pandas gave a broadcast scalar
    (a replication number: int64)."""
    return np.full(n, value, dtype=np.asarray(value).dtype)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The columns of several replications stacked (every part has the same columns)."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _frame(cols: dict[str, np.ndarray]) -> Any:
    import pandas as pd

    return pd.DataFrame(cols)


def _event_detail(e: dict[str, np.ndarray], stages: tuple[str, ...],
                  roles: tuple[str, ...] = (), tiers: tuple[str, ...] = ()) -> np.ndarray:
    """``code`` in words, by kind (docs/results.md)."""
    kinds = e["kind"]
    code = e["code"]
    out = np.full(kinds.shape[0], "", dtype=object)
    causes = np.array(CHURN_CAUSES, dtype=object)
    sel = kinds == EVENT_KINDS.index("churn")
    out[sel] = causes[code[sel]]
    sel = kinds == EVENT_KINDS.index("stage_change")
    out[sel] = np.array(stages, dtype=object)[code[sel]]
    sel = kinds == EVENT_KINDS.index("offer")
    out[sel] = np.array(["stay", "trim", "defect"], dtype=object)[code[sel]]
    sel = kinds == EVENT_KINDS.index("complaint")
    out[sel] = np.where(code[sel] == 1, "in time", "late")
    sel = kinds == EVENT_KINDS.index("new_account")
    out[sel] = np.where(code[sel] == 1, "referral", "cold")
    sel = np.isin(kinds, [EVENT_KINDS.index("key_person_left"),
                          EVENT_KINDS.index("other_person_left")])
    if roles and sel.any():  # the role of the person who left
        out[sel] = np.array(roles, dtype=object)[code[sel]]
    sel = kinds == EVENT_KINDS.index("tier_change")
    if tiers and sel.any():
        # from (the old tier's index is the value) and to, as "important -> key": a move
        # reads whole in one cell (ASCII: a spreadsheet opening the CSV may not take UTF-8)
        names = np.array(tiers, dtype=object)
        out[sel] = (names[e["value"][sel].astype(np.int64)] + " -> ") + names[code[sel]]
    return out
