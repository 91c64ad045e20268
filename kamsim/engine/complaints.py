"""Complaints: a real queue in front of the support team.

Complaints arrive at random times and wait for an agent of the support team, served as a
SimPy ``PriorityResource`` serves requests (a higher tier's service-level priority first). Each takes a
random amount of work (exponential, lognormal or fixed hours). Response time is the time
from arrival to the end of the work; a complaint answered later than its tier's target
counts as unresolved. So response times come out of the load and the team's size.

For very large portfolios (more complaints per period than ``event_level_max``) the same
queue is treated as a fluid: work is processed at the team's rate in priority order, and a
complaint's response time is the work ahead of it when it arrives divided by that rate,
plus its own work. ``tests/test_complaints.py`` checks the two against each other.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from operator import itemgetter
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL, Timeout

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


class _Service(Timeout):
    """The SimPy timeout that ends an agent's services, made without ``Timeout.__init__``
    and put on SimPy's queue by the agent's callbacks (the desk ends ~40,000 services a
    replication at 10k accounts, so their few microseconds count): the attributes SimPy reads,
    and put on the queue as ``Environment.schedule`` puts a ``Timeout``, ``(now + delay,
    NORMAL, next event id, event)``, so it ends at the very time, and in the very order among
    the events of that time, a ``Timeout`` made at that moment would.

    One an agent, put on the queue again for each of its services with its callbacks given
    back (SimPy sets them to None as it processes the event): an agent has at most one
    service on the queue, the next one starting once the last has ended (from the callback
    its end calls). Its ``_delay`` is that of no service in particular (0).

    This reads SimPy 4's private queue (``env._queue``, ``env._eid``, ``env._now``): the
    desk's events of a 10,000-account, 60-month replication took 50 ms so against 58 ms
    through ``Timeout(env, delay)``, and 42 ms with one such event an agent instead of one a
    service. The desk does it only where ``Environment.schedule`` is SimPy 4's own and its
    queue is there (else it makes a ``Timeout``); pyproject.toml keeps SimPy below 5, and
    ``tests/test_kernel_service.py`` checks the time and the order of such a service, and
    that the two ways give the same answers."""

    _ok = True
    _value = None
    _delay = 0.0


class _Agent:
    """One agent of a ``SupportDesk``: what it is working on, and the callbacks that the SimPy
    events ending its services (or waking it) call. The desk's inner loop is here (one event
    a complaint): the callbacks are closures, made once per agent, over the desk's lists
    (which the desk only ever changes in place) and SimPy's queue, so a service costs no new
    callable, one Python frame and few attribute lookups."""

    __slots__ = ("item", "finish", "end", "woken")

    def __init__(self, desk: SupportDesk):
        self.item = -1  # number of the complaint in hand (-1: idle)
        self.finish = 0.0  # when its work ends
        env = desk.env
        # SimPy 4's own queue, pushed as Environment.schedule pushes (see _Service); through
        # Timeout instead (the same times and order, ~15% slower) if the environment
        # schedules in a way of its own (a subclass) or SimPy's queue is not the one known
        fast = (type(env).schedule is simpy.Environment.schedule
                and all(hasattr(env, name) for name in ("_queue", "_eid", "_now")))
        queue: Any = env._queue if fast else None
        ids: Any = env._eid if fast else None
        # the agent's one service event, put on the queue again for each service (an agent
        # has at most one on the queue: a service ends before the next starts), with its one
        # list of callbacks (SimPy sets an event's callbacks to None as it processes it)
        service = object.__new__(_Service)
        service.env = env
        ends: list[Any] = []
        times, months, negp = desk._times, desk._months, desk._negp
        waiting = desk._waiting
        served, ended = desk._served.append, desk._ended.append
        agent = self

        def start(now: float, delay: float) -> None:
            # ``Timeout(env, delay).callbacks.append(end)`` at ``now`` (see _Service)
            if not fast:
                Timeout(env, delay).callbacks.append(end)
                return
            service.callbacks = ends
            heappush(queue, (now + delay, NORMAL, next(ids), service))

        def claim(now: float, j: int) -> None:
            # the next arrival (in order of arrival), now or ahead of it
            desk._next = j + 1
            agent.item = desk._base + j
            at, work = times[j], months[j]
            if at <= now:
                agent.finish = now + work
                start(now, work)
            else:  # one timeout to the end of its work: nothing happens to the agent before
                agent.finish = finish = at + work  # as a timeout at its arrival gives
                start(now, _delay_to(now, finish))

        def end(event: simpy.Event | None) -> None:
            # the service in hand ends (``event``: its timeout), or the agent's first free
            # moment (``_open``, no service in hand). The agent takes the best of those
            # waiting, first adding those that arrived while every agent was busy; if none
            # waits it claims the next arrival, else it waits for new complaints. (What
            # ``claim``, ``start`` and ``_delay_to`` do is written out here: one frame.)
            now = env._now if fast else env.now
            item = agent.item
            if item >= 0:
                finish = agent.finish
                if now < finish:  # an ulp or so early (rare): see _delay_to
                    start(now, _delay_to(now, finish))
                    return
                served(item)
                ended(now)
            j = desk._next
            n = len(times)
            if j < n and times[j] <= now:
                base = desk._base
                while j < n and times[j] <= now:
                    heappush(waiting, (negp[j], base + j, months[j]))
                    j += 1
                desk._next = j
            if waiting:
                _, agent.item, delay = heappop(waiting)
                agent.finish = now + delay  # where SimPy puts the timeout
            elif j < n:  # claim: the next arrival, ahead of it (the arrived ones wait)
                desk._next = j + 1
                agent.item = desk._base + j
                # one timeout to the end of its work: nothing happens to the agent before
                agent.finish = finish = times[j] + months[j]  # as a timeout at its arrival
                delay = finish - now  # > 0: the arrival is after now
                if now + delay > finish:
                    delay = _delay_to(now, finish)
            else:
                agent.item = -1
                desk._wake.callbacks.append(woken)
                return
            if not fast:  # start
                Timeout(env, delay).callbacks.append(end)
                return
            service.callbacks = ends
            heappush(queue, (now + delay, NORMAL, next(ids), service))

        def woken(event: simpy.Event) -> None:
            # new complaints: claim the next, without first queueing the arrived ones by
            # priority (each arrival finds this agent idle at its arrival)
            if desk._next < len(times):
                claim(env.now, desk._next)
            else:
                desk._wake.callbacks.append(woken)

        ends.append(end)
        self.end, self.woken = end, woken


class SupportDesk:
    """Event-level queue: ``c`` agents serve complaints in priority order.

    The discipline is a non-preemptive priority queue with ``c`` identical agents: a higher
    tier's priority first, first come first served within a priority, an idle agent starts an
    arriving complaint at once, and a complaint takes ``hours / rate`` months of one agent.
    SimPy stays the clock: every service ends at a SimPy timeout, whose callback is the agent
    (``_Agent``) taking its next complaint. A complaint is neither a process nor a request of
    its own: the period's arrivals (all known when ``submit`` is called) wait in lists sorted
    by arrival, those that have arrived while every agent is busy in a heap keyed
    (-priority, number), the number being the order of arrival (time, then order of
    submission). An agent that comes free takes the best waiting one; if none waits it claims
    the next arrival and its timeout runs to the end of that one's work (nothing can happen to
    the agent before). This is the order a SimPy ``PriorityResource`` with one request per
    complaint gives (``tests/test_complaints.py`` checks it), at one SimPy event per complaint
    (rarely two, see ``_delay_to``) instead of about six. Accounts, arrivals, targets and
    hours stay in numpy arrays, looked up by number when ``collect`` hands the answers out.
    """

    def __init__(self, env: simpy.Environment, team: SupportTeam):
        self.env = env
        self.team = team
        self.agents = max(1, team.agents)
        self.rate = team.hours_per_month if team.agents > 0 else 0.0
        self.busy_hours = 0.0
        # arrivals not yet claimed, in order of arrival: SimPy times, months of work and
        # -priority; index i is complaint number ``_base + i``, ``_next`` the first unclaimed.
        # (These lists, the heap and the answers below are held by the agents' callbacks:
        # they are only ever changed in place, never rebound.)
        self._times: list[float] = []
        self._months: list[float] = []
        self._negp: list[float] = []
        self._base = 0
        self._next = 0
        self._waiting: list[tuple[float, int, float]] = []  # (-priority, number, months)
        # account, arrival, target and hours of every complaint from number ``_first`` on (the
        # oldest still in hand at the last ``collect``), in numpy arrays
        self._first = 0
        self._acc = np.zeros(0, dtype=np.int64)
        self._arrival = np.zeros(0)
        self._target = np.zeros(0)
        self._hours = np.zeros(0)
        # answered since the last ``collect``: numbers and the times their work ended
        self._served: list[int] = []
        self._ended: list[float] = []
        self._unanswered_accounts: list[int] = []  # no support team
        self._wake = env.event()  # succeeds when new complaints come for idle agents
        self._agents = [_Agent(self) for _ in range(self.agents if self.rate > 0 else 0)]
        if self._agents:
            env.process(self._open())

    def submit(self, account: np.ndarray, arrival: np.ndarray, priority: np.ndarray,
               target_days: np.ndarray, hours: np.ndarray) -> None:
        """Queue complaints arriving at absolute times ``arrival`` (months)."""
        order = np.argsort(arrival, kind="stable")
        if self.rate <= 0:  # no support team: each is recorded, unanswered, on arrival
            for i in order:
                self.env.process(self._unanswered(int(account[i]), float(arrival[i])))
            return
        now = self.env.now
        # (``[order]`` copies already)
        arr = arrival[order].astype(np.float64, copy=False)
        at = now + np.maximum(0.0, arr - now)  # as a SimPy timeout would land
        work = hours[order].astype(np.float64, copy=False)
        acc = account[order].astype(np.int64, copy=False)
        target = target_days[order].astype(np.float64, copy=False)
        negp = -priority[order].astype(np.float64, copy=False)
        # months of an agent's work: ``hours / rate`` for all at once (the same IEEE division
        # the agent would do one by one)
        months = work / self.rate
        del self._times[:self._next], self._months[:self._next], self._negp[:self._next]
        self._base += self._next
        self._next = 0
        end = self._first + self._acc.size  # the next number
        if self._times and at.size and at[0] < self._times[-1]:
            # an arrival earlier than some not yet claimed: those are queued again with the
            # new ones, in order of arrival (time, then order of submission), under new
            # numbers (nothing holds their old ones)
            i = np.arange(self._base - self._first, end - self._first)
            by = np.argsort(np.concatenate([self._times, at]), kind="stable")
            arr, at, work, acc, target, negp, months = (
                np.concatenate([o, x])[by] for o, x in (
                    (self._arrival[i], arr), (np.array(self._times), at),
                    (self._hours[i], work), (self._acc[i], acc), (self._target[i], target),
                    (np.array(self._negp), negp), (np.array(self._months), months)))
            del self._times[:], self._months[:], self._negp[:]
            self._base = end
        self._times += at.tolist()
        self._months += months.tolist()
        self._negp += negp.tolist()
        self._acc = np.concatenate([self._acc, acc])
        self._arrival = np.concatenate([self._arrival, arr])
        self._target = np.concatenate([self._target, target])
        self._hours = np.concatenate([self._hours, work])
        if self._wake.callbacks:
            self._wake.succeed()
            self._wake = self.env.event()

    def _unanswered(self, account: int, arrival: float):
        yield self.env.timeout(max(0.0, arrival - self.env.now))
        self._unanswered_accounts.append(account)  # no one works on it

    def _open(self):
        """The agents' first free moment (a process: SimPy starts processes before the
        other events of the same time, as it started each agent's own process before)."""
        for agent in self._agents:
            agent.end(None)  # (no service in hand: only its taking the next)
        yield from ()

    def collect(self) -> Outcomes:
        """Complaints answered since the last call."""
        if self.rate <= 0:  # no team: only unanswered ones (no agent serves any)
            a = np.array(self._unanswered_accounts, dtype=np.int64)
            self._unanswered_accounts.clear()
            return a, np.full(a.size, np.inf), np.zeros(a.size), np.zeros(a.size, dtype=bool)
        numbers = np.array(self._served, dtype=np.int64)
        ended = np.array(self._ended, dtype=np.float64)
        self._served.clear()
        self._ended.clear()
        i = numbers - self._first
        # response time in days, as ``(end - arrival) * DAYS_PER_MONTH`` one by one would give
        days = (ended - self._arrival[i]) * DAYS_PER_MONTH
        h = self._hours[i]
        self.busy_hours += float(h.sum())
        out = self._acc[i], days, h, days <= self._target[i]
        # the arrays keep the complaints still in hand: not yet claimed, waiting, in service
        oldest = min([self._base + self._next, *(a.item for a in self._agents if a.item >= 0),
                      *map(itemgetter(1), self._waiting)])
        cut = oldest - self._first
        self._acc, self._arrival = self._acc[cut:], self._arrival[cut:]
        self._target, self._hours = self._target[cut:], self._hours[cut:]
        self._first = oldest
        return out


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
