"""What one replication hands back: per-period aggregates by tier (kept as it goes, so
memory does not grow with the portfolio), per-account totals, an optional event log and an
optional narrated trace of one account."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TS_FIELDS", "EVENT_KINDS", "ReplicationOutput", "EventLog"]

#: per period x tier sums (counts, money, hours)
TS_FIELDS = (
    "active", "new", "churned", "revenue", "discounts", "cogs", "cost_to_serve",
    "acquisition", "bad_debt", "profit", "am_asked", "am_delivered", "exec_asked",
    "exec_delivered", "specialist_asked", "specialist_delivered", "complaints",
    "complaints_unresolved", "offers", "offers_defect", "offers_trim", "trust_sum",
    "coverage_sum", "service_ratio_sum", "key_person_departures",
)

EVENT_KINDS = (
    "churn", "stage_change", "tier_change", "offer", "key_person_left", "complaint",
    "new_account", "default", "shock", "other_person_left",
)


def _column(x: np.ndarray | float, n: int, dtype: Any) -> np.ndarray:
    """``x`` (a scalar or ``n`` values) as a fresh array of ``n`` values of ``dtype``."""
    if isinstance(x, np.ndarray) and x.shape == (n,):  # the usual case: copied directly
        return np.array(x, dtype=dtype)
    if np.ndim(x) == 0:
        return np.full(n, x, dtype=dtype)  # most events carry one code or value for all
    return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()


@dataclass
class EventLog:
    period: list[np.ndarray] = field(default_factory=list)
    account: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    code: list[np.ndarray] = field(default_factory=list)  # cause / new stage / outcome ...
    value: list[np.ndarray] = field(default_factory=list)

    def add(self, period: int, account: np.ndarray, kind: str, code: np.ndarray | int,
            value: np.ndarray | float = 0.0) -> None:
        n = account.shape[0]
        if n == 0:
            return
        self.period.append(np.full(n, period, dtype=np.int32))
        self.account.append(account.astype(np.int64))
        self.kind.append(np.full(n, EVENT_KINDS.index(kind), dtype=np.int8))
        self.code.append(_column(code, n, np.int64))
        self.value.append(_column(value, n, np.float64))

    def arrays(self) -> dict[str, np.ndarray]:
        def cat(xs: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(xs) if xs else np.zeros(0, dtype=dtype)

        return {"period": cat(self.period, np.int32), "account": cat(self.account, np.int64),
                "kind": cat(self.kind, np.int8), "code": cat(self.code, np.int64),
                "value": cat(self.value, np.float64)}


@dataclass
class ReplicationOutput:
    replication: int
    periods: int
    dt: float
    ts: dict[str, np.ndarray]  # name -> (periods, n_tiers)
    stage_counts: np.ndarray  # (periods, n_tiers, n_stages) at period start
    transitions: np.ndarray  # (periods, n_tiers, n_stages + 1, n_stages + 1); last = new/lost
    churn_causes: np.ndarray  # (periods, n_tiers, n_causes)
    utilisation: np.ndarray  # (periods, 4): account managers, executives, specialists, support
    accounts: dict[str, np.ndarray]  # per slot that was ever active
    events: dict[str, np.ndarray] | None
    trace: list[dict[str, Any]] | None = None
