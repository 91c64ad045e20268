"""Complaints: a real queue in front of the support team.

Complaints arrive at random times and wait for an agent of the support team, a SimPy
``PriorityResource`` (a higher tier's service-level priority is served first). Each takes a
random amount of work (exponential, lognormal or fixed hours). Response time is the time
from arrival to the end of the work; a complaint answered later than its tier's target
counts as unresolved. So response times come out of the load and the team's size.

For very large portfolios (more complaints per period than ``event_level_max``) the same
queue is treated as a fluid: work is processed at the team's rate in priority order, and a
complaint's response time is the work ahead of it when it arrives divided by that rate,
plus its own work. ``tests/test_complaints.py`` checks the two against each other.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import simpy
from simpy.resources.resource import PriorityResource, SortedQueue

from kamsim.engine.rng import norm_ppf
from kamsim.spec.models import SupportTeam

__all__ = ["DAYS_PER_MONTH", "work_hours", "SupportDesk", "FluidDesk", "Outcomes"]

DAYS_PER_MONTH = 365.25 / 12.0

Outcomes = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # account, days, hours, ok


def work_hours(team: SupportTeam, u: np.ndarray) -> np.ndarray:
    """Hours of work per complaint from uniforms ``u`` (inverse CDF, so one uniform each)."""
    if team.service_time == "fixed":
        return np.full(u.shape[0], team.mean_hours)
    if team.service_time == "exponential":
        return -team.mean_hours * np.log1p(-np.clip(u, 0.0, 1 - 1e-12))
    s = team.sigma
    return team.mean_hours * np.exp(s * norm_ppf(u) - 0.5 * s * s)


class _InsortQueue(SortedQueue):
    """SimPy's SortedQueue re-sorts the whole list on every request, so a backlog of q
    complaints costs O(q^2 log q); inserting in place keeps the same order (after equal keys,
    as the stable sort did) at O(log q) comparisons."""

    def append(self, item: Any) -> None:
        if self.maxlen is not None and len(self) >= self.maxlen:
            raise RuntimeError("Cannot append event. Queue is full.")
        bisect.insort_right(self, item, key=lambda e: e.key)


class _Agents(PriorityResource):
    PutQueue = _InsortQueue


class SupportDesk:
    """Event-level queue: one SimPy process per complaint."""

    def __init__(self, env: simpy.Environment, team: SupportTeam):
        self.env = env
        self.team = team
        self.agents = _Agents(env, capacity=max(1, team.agents))
        self.rate = team.hours_per_month if team.agents > 0 else 0.0
        self._done: list[tuple[int, float, float, bool]] = []
        self.busy_hours = 0.0

    def submit(self, account: np.ndarray, arrival: np.ndarray, priority: np.ndarray,
               target_days: np.ndarray, hours: np.ndarray) -> None:
        """Queue complaints arriving at absolute times ``arrival`` (months)."""
        for i in np.argsort(arrival, kind="stable"):
            self.env.process(self._complaint(int(account[i]), float(arrival[i]),
                                             float(priority[i]), float(target_days[i]),
                                             float(hours[i])))

    def _complaint(self, account: int, arrival: float, priority: float, target: float,
                   hours: float):
        yield self.env.timeout(max(0.0, arrival - self.env.now))
        if self.rate <= 0:  # no support team: never answered in time
            self._done.append((account, float("inf"), 0.0, False))  # no one works on it
            return
        # simpy annotates priority as int, but any orderable works (ours may be fractional)
        with self.agents.request(priority=-priority) as req:  # type: ignore[arg-type]
            yield req
            yield self.env.timeout(hours / self.rate)
            self.busy_hours += hours
        days = (self.env.now - arrival) * DAYS_PER_MONTH
        self._done.append((account, days, hours, days <= target))

    def collect(self) -> Outcomes:
        """Complaints answered since the last call."""
        done, self._done = self._done, []
        if not done:
            e = np.zeros(0)
            return e.astype(np.int64), e, e, e.astype(bool)
        a, d, h, ok = zip(*done, strict=True)
        return (np.array(a, dtype=np.int64), np.array(d), np.array(h), np.array(ok, dtype=bool))


class FluidDesk:
    """The same queue as a fluid, for very large portfolios (documented approximation)."""

    def __init__(self, team: SupportTeam, classes: np.ndarray):
        self.team = team
        self.rate = team.agents * team.hours_per_month  # team hours per month
        self.classes = np.unique(classes)[::-1]  # priorities, highest first
        self.backlog = np.zeros(self.classes.size)  # hours waiting per class
        self._pending: Outcomes | None = None
        self.busy_hours = 0.0

    def submit(self, account: np.ndarray, offset: np.ndarray, priority: np.ndarray,
               target_days: np.ndarray, hours: np.ndarray, dt: float) -> None:
        """Complaints of one period; ``offset`` is the arrival position in the period (0-1)."""
        k = np.searchsorted(-self.classes, -priority)
        work = np.bincount(k, weights=hours, minlength=self.classes.size)
        ahead_backlog = np.cumsum(self.backlog)  # this class and higher ones
        ahead_work = np.cumsum(work)
        if self.rate <= 0:
            days = np.full(account.shape[0], np.inf)
        else:
            # work ahead on arrival: the backlog of this and higher classes, plus what has
            # arrived of them so far this period, less what the team has done meanwhile
            queue = np.maximum(0.0, ahead_backlog[k] + offset * (ahead_work[k] - self.rate * dt))
            days = (queue / self.rate + hours / self.team.hours_per_month) * DAYS_PER_MONTH
        # backlog: capacity of the period goes to classes in priority order
        capacity = self.rate * dt
        demand = self.backlog + work
        before = np.cumsum(demand) - demand
        served = np.clip(capacity - before, 0.0, demand)
        self.busy_hours += float(served.sum())
        self.backlog = demand - served
        worked = hours if self.rate > 0 else np.zeros_like(hours)  # no team: no one works
        self._pending = (account, days, worked, days <= target_days)

    def collect(self) -> Outcomes:
        out = self._pending
        self._pending = None
        if out is None:
            e = np.zeros(0)
            return e.astype(np.int64), e, e, e.astype(bool)
        return out
