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

import heapq
import math

import numpy as np
import simpy

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


class SupportDesk:
    """Event-level queue: ``c`` agents serve complaints in priority order.

    The discipline is a non-preemptive priority queue with ``c`` identical agents: a higher
    tier's priority first, first come first served within a priority, an idle agent starts an
    arriving complaint at once, and a complaint takes ``hours / rate`` months of one agent.
    The agents are SimPy processes and every service is one SimPy timeout, so SimPy stays the
    clock, but a complaint is not a process of its own: the period's arrivals (all known when
    ``submit`` is called) wait in a list sorted by arrival, those that have arrived while
    every agent is busy in a heap keyed (-priority, arrival, order of arrival). An agent that
    comes free takes the best waiting one; if none waits it claims the next arrival and sleeps
    until that one's work is done (one timeout: nothing can happen to the agent before).
    This is the order a SimPy ``PriorityResource`` with one request per complaint would give
    (it did, and ``tests/test_complaints.py`` pins it), at one SimPy event per complaint
    (rarely two, see ``_delay_to``) instead of about six.
    """

    def __init__(self, env: simpy.Environment, team: SupportTeam):
        self.env = env
        self.team = team
        self.agents = max(1, team.agents)
        self.rate = team.hours_per_month if team.agents > 0 else 0.0
        self.busy_hours = 0.0
        # arrivals not yet claimed, sorted by (time, seq): their SimPy times, and the items
        # (-priority, time, seq, months of work, account, arrival, target, hours) that wait
        # in the heap ``_waiting`` (only the first three fields are ever compared: seq is
        # unique). The agents hold these lists, so they are only ever changed in place.
        self._times: list[float] = []
        self._items: list[tuple[float, float, int, float, int, float, float, float]] = []
        self._next = 0  # first unclaimed arrival
        self._waiting: list[tuple[float, float, int, float, int, float, float, float]] = []
        self._seq = 0
        # answered since the last ``collect``: the items and the times their work ended (the
        # response time and the in-time flag are worked out for all of them there)
        self._served: list[tuple[float, float, int, float, int, float, float, float]] = []
        self._ended: list[float] = []
        self._unanswered_accounts: list[int] = []  # no support team
        self._wake = env.event()  # succeeds when new complaints come for idle agents
        if self.rate > 0:
            for _ in range(self.agents):
                env.process(self._agent())

    def submit(self, account: np.ndarray, arrival: np.ndarray, priority: np.ndarray,
               target_days: np.ndarray, hours: np.ndarray) -> None:
        """Queue complaints arriving at absolute times ``arrival`` (months)."""
        order = np.argsort(arrival, kind="stable")
        if self.rate <= 0:  # no support team: each is recorded, unanswered, on arrival
            for i in order:
                self.env.process(self._unanswered(int(account[i]), float(arrival[i])))
            return
        now = self.env.now
        arr = arrival[order].astype(np.float64)
        times = (now + np.maximum(0.0, arr - now)).tolist()  # as a SimPy timeout would land
        seq = range(self._seq, self._seq + order.size)
        self._seq += order.size
        work = hours[order].astype(np.float64)
        # months of an agent's work: ``hours / rate`` for all at once (the same IEEE division
        # the agent would do one by one)
        items = list(zip((-priority[order].astype(np.float64)).tolist(), times, seq,
                         (work / self.rate).tolist(), account[order].astype(np.int64).tolist(),
                         arr.tolist(), target_days[order].astype(np.float64).tolist(),
                         work.tolist(), strict=True))
        del self._times[:self._next], self._items[:self._next]
        self._next = 0
        if self._times and times and times[0] < self._times[-1]:
            # an earlier arrival than some still pending: keep the order of arrival
            self._items[:] = sorted(self._items + items, key=lambda it: (it[1], it[2]))
            self._times[:] = [it[1] for it in self._items]
        else:
            self._items += items
            self._times += times
        if self._wake.callbacks:
            self._wake.succeed()
            self._wake = self.env.event()

    def _unanswered(self, account: int, arrival: float):
        yield self.env.timeout(max(0.0, arrival - self.env.now))
        self._unanswered_accounts.append(account)  # no one works on it

    def _agent(self):
        # the per-complaint path: everything it touches is bound to a local name once
        env, timeout = self.env, self.env.timeout
        times, items, waiting = self._times, self._items, self._waiting
        served, ended = self._served.append, self._ended.append
        push, pop = heapq.heappush, heapq.heappop
        while True:
            # free (at the start, or after a service): first those that arrived while every
            # agent was busy, best first
            now, j, n = env.now, self._next, len(times)
            while j < n and times[j] <= now:
                push(waiting, items[j])
                j += 1
            self._next = j
            if waiting:
                item = pop(waiting)
                yield timeout(item[3])
            else:  # idle: claim the next arrival (in order of arrival), start it when it comes
                while self._next >= len(times):
                    yield self._wake
                j = self._next
                self._next = j + 1
                item = items[j]
                if item[1] <= env.now:
                    yield timeout(item[3])
                else:  # one timeout to the end of its work: nothing happens to us before
                    finish = item[1] + item[3]  # as a timeout at its arrival gives
                    while env.now < finish:  # usually once; see _delay_to
                        yield timeout(_delay_to(env.now, finish))
            served(item)
            ended(env.now)

    def collect(self) -> Outcomes:
        """Complaints answered since the last call."""
        if self.rate <= 0:  # no team: only unanswered ones (no agent serves any)
            a = np.array(self._unanswered_accounts, dtype=np.int64)
            self._unanswered_accounts.clear()
            return a, np.full(a.size, np.inf), np.zeros(a.size), np.zeros(a.size, dtype=bool)
        if not self._served:
            e = np.zeros(0)
            return e.astype(np.int64), e, e, e.astype(bool)
        _, _, _, _, acc, arrival, target, hours = zip(*self._served, strict=True)
        # response time in days, as ``(end - arrival) * DAYS_PER_MONTH`` one by one would give
        days = (np.array(self._ended) - np.array(arrival)) * DAYS_PER_MONTH
        self._served.clear()
        self._ended.clear()
        h = np.array(hours)
        self.busy_hours += float(h.sum())
        return np.array(acc, dtype=np.int64), days, h, days <= np.array(target)


def _delay_to(now: float, t: float) -> float:
    """The longest delay that SimPy adds to ``now`` without passing ``t``.

    A complaint must end at the very time a timeout started on its arrival would give, but
    ``now + (t - now)`` can round one ulp past ``t`` and sometimes no delay lands on ``t``
    exactly. Then the agent wakes an ulp or so early, and from there ``t - now`` is exact
    (Sterbenz), so a second timeout lands on ``t``."""
    d = t - now
    while d > 0 and now + d > t:
        d = math.nextafter(d, 0.0)
    return d


class FluidDesk:
    """The same queue as a fluid, for very large portfolios (documented approximation).

    Response times are known as soon as complaints are submitted, but an outcome is only
    handed out (``collect``) at the first period start at or after the complaint's work
    ends, as the event-level desk does: the engine learns about a complaint when it has been
    answered, whichever desk answers it, so results do not jump when a growing portfolio
    crosses ``event_level_max``."""

    def __init__(self, team: SupportTeam, classes: np.ndarray):
        self.team = team
        self.rate = team.agents * team.hours_per_month  # team hours per month
        self.classes = np.unique(classes)[::-1]  # priorities, highest first
        self.backlog = np.zeros(self.classes.size)  # hours waiting per class
        self._period = 0  # periods submitted so far
        e = np.zeros(0)
        # outcomes not yet handed out, with the period (count of submits) that releases them
        self._pending: Outcomes = (e.astype(np.int64), e, e, e.astype(bool))
        self._release = np.zeros(0, dtype=np.int64)
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
        # the period start at or after the end of the work (in periods from this one's
        # start); unanswered ones (no team) are recorded once they have arrived
        ends = offset + np.where(np.isfinite(days), days, 0.0) / (DAYS_PER_MONTH * dt)
        release = self._period + np.maximum(1, np.ceil(ends)).astype(np.int64)
        new = (account, days, worked, days <= target_days)
        self._pending = tuple(np.concatenate([old, x]) for old, x in  # type: ignore[assignment]
                              zip(self._pending, new, strict=True))
        self._release = np.concatenate([self._release, release])
        self._period += 1

    def collect(self) -> Outcomes:
        """Complaints answered by the start of the current period (the last ``submit``'s
        period starts after it, so this period's own arrivals come out from the next)."""
        now = self._release < self._period  # released at a start already reached
        out = tuple(x[now] for x in self._pending)
        self._pending = tuple(x[~now] for x in self._pending)  # type: ignore[assignment]
        self._release = self._release[~now]
        return out  # type: ignore[return-value]
