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

__all__ = ["AccountMap", "START", "account_map", "last_month", "starting_stats",
           "unit_from_trace"]

#: how a map of the unit before any month is played is named (``month=None``)
START = "start of the run (before month 0)"


@dataclass
class AccountMap:
    """One account's decision unit at one point of a run.

    ``description`` is :func:`kamsim.dmu.report.describe_unit`'s plain data (people, metrics,
    flags); ``units`` holds that one account (index 0) and ``graph`` is its DiGraph.
    ``month`` is the month shown, at its end (None = the start of the run, before month 0 is
    played); ``when`` says it in words for headers; ``note`` says why it differs from the month
    asked, if it does.
    """

    account_id: str
    tier: str
    month: float | None
    description: dict[str, Any]
    units: Units
    graph: Any  # networkx.DiGraph
    note: str | None = None
    scenario: str = ""
    when: str = START


def _account_index(prep: Any, account_id: str, scenario: str) -> int:
    # (the same lookup and message as kamsim trace: starting accounts only)
    from kamsim.experiment import starting_account

    return starting_account(prep, account_id, scenario)


def last_month(spec: ScenarioSpec) -> int:
    """The last month of the horizon that is played (35 for 36 months): the engine plays
    ceil(horizon / dt) periods, period k starting at month k·dt (docs/model.md, Time)."""
    dt, periods = spec.scenario.time_grid()
    return int(np.floor((periods - 1) * dt + 1e-9))


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


def account_map(spec: ScenarioSpec, account_id: str, *, month: int | None = None) -> AccountMap:
    """The decision unit of starting account ``account_id`` at the start of the run
    (``month=None``) or at the end of month ``month``.

    "Month M" means what ``kamsim trace`` means by it (its "month M: ..." sentences, the
    accounts table's ``churn_period``, the lesson page's slider): the period that starts at
    month M. So ``month=M`` shows the unit after month M's departures and contact, and month 0
    is already a month played, not the start. For a month the account is traced through one
    replication (:func:`kamsim.trace.trace`: the scenario's seed, replication 0, the same
    future as ``kamsim trace``); if it was lost before month M, the unit at the end of the
    month it was lost is shown and ``note`` says so. With weekly periods, the end of month M is
    the end of the last week that starts in it. Raises RunError for an unknown account or a
    month that is not played.
    """
    from kamsim.experiment import prepared

    sc = spec.scenario
    last = last_month(spec)
    if month is not None and not 0 <= month <= last:
        raise RunError(f"month {month:g} is outside the horizon of scenario {sc.name!r} "
                       f"(its months run from 0 to {last})")
    prep = prepared(spec)
    a = _account_index(prep, account_id, sc.name)
    tier = str(prep.model.tiers[int(prep.tier[a])])
    threshold = prep.model.spec.stakeholders.influence_threshold
    note = None
    shown: float | None = None
    when = START
    if month is None:
        one = select_accounts(prep.units, np.array([a]))
    else:
        from kamsim.trace import trace

        records = trace(spec, str(account_id)).records
        if not records:
            raise RunError(f"account {account_id!r} has no trace in scenario {sc.name!r}")
        # record k holds the unit at the end of period k, which starts at month record["month"]
        starts = np.array([float(r["month"]) for r in records])
        k = int(np.searchsorted(starts, float(month) + 1.0 - 1e-9)) - 1
        record = records[k]
        shown = float(month)
        if k == len(records) - 1 and record.get("churned") \
                and int(np.floor(starts[k] + 1e-9)) < month:
            shown = float(record["month"])
            note = (f"the account was lost in month {shown:g}; showing the end of that month "
                    f"instead of month {month:g}")
        when = f"end of month {shown:g}"
        one = unit_from_trace(prep.units, a, record)
        tier = str(record.get("tier", tier))
    desc = describe_unit(one, metrics(one, threshold), 0, str(account_id))
    return AccountMap(account_id=str(account_id), tier=tier, month=shown, description=desc,
                      units=one, graph=to_graph(one, 0), note=note, scenario=sc.name,
                      when=when)


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
