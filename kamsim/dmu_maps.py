"""Decision-unit maps of a scenario's accounts, for people to read (``kamsim dmu show/stats``).

This module sits at the experiment layer: it prepares a scenario (and, for a later month, runs
one traced replication) and hands back plain data built with :mod:`kamsim.dmu`. The CLI only
renders what these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kamsim.dmu import Units, metrics, select_accounts, to_graph
from kamsim.dmu.report import describe_unit, portfolio_stats
from kamsim.errors import RunError
from kamsim.spec.load import ScenarioSpec

__all__ = ["AccountMap", "account_map", "starting_stats", "unit_from_trace"]


@dataclass
class AccountMap:
    """One account's decision unit at one month.

    ``description`` is :func:`kamsim.dmu.report.describe_unit`'s plain data (people, metrics,
    flags); ``units`` holds that one account (index 0) and ``graph`` is its DiGraph.
    ``month`` is the month shown; ``note`` says why it differs from the month asked, if it does.
    """

    account_id: str
    tier: str
    month: float
    description: dict[str, Any]
    units: Units
    graph: Any  # networkx.DiGraph
    note: str | None = None
    scenario: str = ""


def _account_index(prep: Any, account_id: str, scenario: str) -> int:
    # (the same lookup and message as kamsim trace: starting accounts only)
    from kamsim.experiment import starting_account

    return starting_account(prep, account_id, scenario)


def unit_from_trace(units: Units, account_index: int, record: dict[str, Any]) -> Units:
    """The unit of ``account_index`` (a one-account Units) as a trace record shows it.

    Attitude, coverage and months in post come from ``record["people"]``; what does not change
    during a run (role, influence, holder, seniority, edges) comes from ``units``. Raises
    RunError if the record's people are not the people of that account.
    """
    one = select_accounts(units, np.array([account_index]))
    people = record.get("people", [])
    ids = [str(p["id"]) for p in people]
    if ids != [str(x) for x in one.person_id]:
        raise RunError(f"trace of month {record.get('month')} does not match the decision unit "
                       f"of account index {account_index}")
    one.attitude = np.array([float(p["attitude"]) for p in people], np.float64)
    one.coverage = np.array([float(p["coverage"]) for p in people], np.float64)
    one.months_in_post = np.array([float(p["months_in_post"]) for p in people], np.float64)
    return one


def account_map(spec: ScenarioSpec, account_id: str, *, month: float = 0) -> AccountMap:
    """The decision unit of starting account ``account_id`` at ``month`` (0 = the start).

    For ``month > 0`` one replication is run (in this process) with the account traced, and
    the unit is shown as it is at the end of that month; if the account left earlier, its last
    month is shown and ``note`` says so. Raises RunError for an unknown account or a month
    outside the horizon.
    """
    from kamsim.experiment import prepared, simulate

    sc = spec.scenario
    if month < 0 or month > sc.horizon_months:
        raise RunError(f"month {month:g} is outside the horizon of scenario {sc.name!r} "
                       f"(0 to {sc.horizon_months})")
    prep = prepared(spec)
    a = _account_index(prep, account_id, sc.name)
    tier = str(prep.model.tiers[int(prep.tier[a])])
    threshold = prep.model.spec.stakeholders.influence_threshold
    note = None
    shown = 0.0
    if month == 0:
        one = select_accounts(prep.units, np.array([a]))
    else:
        result = simulate(spec, replications=1, workers=1, focus=str(account_id))
        trace = result.outputs[0].trace or []
        if not trace:
            raise RunError(f"account {account_id!r} left before month {month:g}: no trace")
        # the record of a period holds the unit at the end of that period
        ends = np.array([float(r["month"]) + result.outputs[0].dt for r in trace])
        k = int(np.searchsorted(ends, float(month) - 1e-9))
        if k >= len(trace):
            k = len(trace) - 1
            note = (f"the account left in month {ends[k]:g}; showing its last month "
                    f"instead of month {month:g}")
        record = trace[k]
        one = unit_from_trace(prep.units, a, record)
        tier = str(record.get("tier", tier))
        shown = float(ends[k])
    desc = describe_unit(one, metrics(one, threshold), 0, str(account_id))
    return AccountMap(account_id=str(account_id), tier=tier, month=shown, description=desc,
                      units=one, graph=to_graph(one, 0), note=note, scenario=sc.name)


def starting_stats(spec: ScenarioSpec) -> list[dict[str, Any]]:
    """Decision-unit coverage, multi-threading and red flags of the starting portfolio by tier.

    One row per tier of the rules (in tier order, with 0 accounts where a tier is empty) and a
    last row ``all``; the columns are those of :func:`kamsim.dmu.report.portfolio_stats`.
    """
    from kamsim.experiment import prepared

    prep = prepared(spec)
    n = prep.n_start
    start = select_accounts(prep.units, np.arange(n))
    mt = metrics(start, prep.model.spec.stakeholders.influence_threshold)
    tiers = np.asarray(prep.model.tiers, dtype=object)[prep.tier[:n]]
    return portfolio_stats(mt, tiers, order=list(prep.model.tiers))
