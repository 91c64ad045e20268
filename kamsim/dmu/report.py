"""Plain-data descriptions of decision units for the CLI and reports (no printing here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kamsim.dmu.arrays import HOLDERS, Units, attitude_label, coverage_label
from kamsim.dmu.metrics import FLAG_NAMES, FLAG_TEXT, Metrics

__all__ = ["describe_unit", "portfolio_stats"]


def describe_unit(units: Units, metrics: Metrics, account_index: int, account_id: str
                  ) -> dict[str, Any]:
    """One account's unit as plain data: ``account_id``, ``people`` rows, ``metrics``, ``flags``.

    People rows hold id, role, influence, attitude (value) and attitude_label, coverage (value)
    and coverage_label, held_by, months_in_post. ``flags`` lists the account's red flags in words
    (``{"flag": name, "text": ...}``), in the order of ``FLAG_NAMES``.
    """
    a = int(account_index)
    lo, hi = int(units.offsets[a]), int(units.offsets[a + 1])
    att_l = attitude_label(units.attitude[lo:hi])
    cov_l = coverage_label(units.coverage[lo:hi])
    people = [
        {
            "id": str(units.person_id[p]),
            "role": units.role_names[int(units.role[p])],
            "influence": float(units.influence[p]),
            "attitude": float(units.attitude[p]), "attitude_label": str(att_l[k]),
            "coverage": float(units.coverage[p]), "coverage_label": str(cov_l[k]),
            "held_by": HOLDERS[int(units.held_by[p])],
            "months_in_post": float(units.months_in_post[p]),
        }
        for k, p in enumerate(range(lo, hi))
    ]
    values = {
        "coverage": float(metrics.coverage[a]), "sentiment": float(metrics.sentiment[a]),
        "multithreading": float(metrics.multithreading[a]),
        "dm_covered": bool(metrics.dm_covered[a]), "champion": bool(metrics.champion[a]),
        "spof_share": float(metrics.spof_share[a]), "red_flags": int(metrics.red_flags[a]),
        "strength": float(metrics.strength[a]),
    }
    flags = [{"flag": f, "text": FLAG_TEXT[f]} for f in FLAG_NAMES
             if f in metrics.flags and bool(metrics.flags[f][a])]
    return {"account_id": str(account_id), "account_index": a, "people": people,
            "metrics": values, "flags": flags}


def portfolio_stats(metrics: Metrics, tiers: np.ndarray, order: Sequence[str] | None = None
                    ) -> list[dict[str, Any]]:
    """One row per tier (in order of first appearance in ``tiers``) and a last row ``all``.

    With ``order``, the rows are exactly the tiers of ``order`` in that order (a tier with no
    account gets a row with 0 accounts and zero means) and ValueError is raised if ``tiers``
    holds a name that ``order`` lacks.

    Each row: tier, accounts, mean_coverage, mean_multithreading, share_dm_covered,
    share_champion, share_single_threaded, mean_red_flags, and ``share_<flag>`` per flag.
    Means over zero accounts are 0.
    """
    tiers = np.asarray(tiers).astype(str)
    if tiers.shape != metrics.coverage.shape:
        raise ValueError(f"tiers {tiers.shape} do not match {metrics.coverage.shape} accounts")
    if order is None:
        names, first, inverse = np.unique(tiers, return_index=True, return_inverse=True)
        rows_of = np.argsort(first, kind="stable")
    else:
        names = np.asarray([str(t) for t in order], dtype=str)
        unknown = sorted(set(tiers.tolist()) - set(names.tolist()))
        if unknown:
            raise ValueError(f"tiers {unknown} are not in the order {list(names)}")
        sorter = np.argsort(names, kind="stable")
        inverse = sorter[np.searchsorted(names, tiers, sorter=sorter)] if tiers.size else \
            np.zeros(0, np.int64)
        rows_of = np.arange(names.size)
    k = names.size
    counts = np.bincount(inverse, minlength=k).astype(np.float64)

    def mean(values: np.ndarray) -> np.ndarray:
        s = np.bincount(inverse, weights=np.asarray(values, np.float64), minlength=k)
        out = np.zeros(k)
        np.divide(s, counts, out=out, where=counts > 0)
        return out

    cols = {
        "mean_coverage": metrics.coverage, "mean_multithreading": metrics.multithreading,
        "share_dm_covered": metrics.dm_covered, "share_champion": metrics.champion,
        "share_single_threaded": metrics.flags.get("single_threaded",
                                                   metrics.multithreading <= 1),
        "mean_red_flags": metrics.red_flags,
        **{f"share_{f}": v for f, v in metrics.flags.items()},
    }
    per_tier = {c: mean(v) for c, v in cols.items()}
    rows: list[dict[str, Any]] = []
    for i in rows_of:
        row: dict[str, Any] = {"tier": str(names[i]), "accounts": int(counts[i])}
        row.update({c: float(per_tier[c][i]) for c in cols})
        rows.append(row)
    n = metrics.coverage.size
    total: dict[str, Any] = {"tier": "all", "accounts": int(n)}
    total.update({c: float(np.mean(np.asarray(v, np.float64))) if n else 0.0
                  for c, v in cols.items()})
    rows.append(total)
    return rows
