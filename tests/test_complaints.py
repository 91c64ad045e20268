"""The complaint queue against queueing theory (docs/model.md, "Complaints").

- the event-level ``SupportDesk`` keeps its discipline on a hand-worked case (two agents:
  priority first, first come first served within a priority, an idle agent starts an
  arriving complaint at once, each complaint starts at the very time it arrives), and
  answers random complaints in the order and at the times a SimPy ``PriorityResource`` with
  one request per complaint does;
- the event-level ``SupportDesk`` with one agent, exponential work
  and Poisson arrivals is an M/M/1 queue: mean response time 1/(mu - lambda);
- with two priority classes it is a non-preemptive priority M/M/1 queue (Cobham's formula),
  and the high class waits less;
- the ``FluidDesk`` (used above ``event_level_max`` complaints per period) agrees with the
  event-level desk on the share of complaints answered within target at moderate load;
- a team of size 0 answers nothing in time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import simpy

from kamsim.engine.complaints import DAYS_PER_MONTH, FluidDesk, SupportDesk, work_hours
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario
from kamsim.spec.models import SupportTeam

ROOT = Path(__file__).resolve().parents[1]
ONE_AGENT = SupportTeam(agents=1, hours_per_month=140.0, service_time="exponential",
                        mean_hours=6.0)


def _event_level(team: SupportTeam, arrivals: np.ndarray, priority: np.ndarray,
                 target_days: np.ndarray, hours: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Response time (months) and in-target flag of every complaint, in submission order."""
    env = simpy.Environment()
    desk = SupportDesk(env, team)
    n = arrivals.shape[0]
    desk.submit(np.arange(n), arrivals, priority, target_days, hours)
    env.run()
    acc, days, _, ok = desk.collect()
    assert acc.shape[0] == n  # every complaint answered once the queue runs dry
    response = np.empty(n)
    in_time = np.empty(n, dtype=bool)
    response[acc] = days / DAYS_PER_MONTH
    in_time[acc] = ok
    return response, in_time


def _starts_and_finishes(team: SupportTeam, arrivals: list[float], priority: list[float],
                         hours: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finish and start times (months) of every complaint, and the order they were answered."""
    env = simpy.Environment()
    desk = SupportDesk(env, team)
    n = len(arrivals)
    arr, work = np.array(arrivals), np.array(hours)
    desk.submit(np.arange(n), arr, np.array(priority), np.full(n, 100.0), work)
    env.run()
    acc, days, done_hours, _ = desk.collect()
    assert np.array_equal(done_hours, work[acc])
    # exact: every time and duration below is a binary fraction
    finish = np.empty(n)
    finish[acc] = arr[acc] + days / DAYS_PER_MONTH
    return finish - work / team.hours_per_month, finish, acc


def test_event_desk_discipline_by_hand() -> None:
    """Two agents, one hour of work a month each (so a month per hour of work).

    0: arrives 0, agent A works 0-3.     1: arrives 1, agent B works 1-5.25.
    2 (low), 3 (high), 4 (high), 5 (low) arrive at 1.5, 2, 2.5, 2.75 while both are busy.
    At 3 A takes 3 (high, first), 3-5; at 5 A takes 4 (high), 5-6; at 5.25 B takes 2 (low,
    first), 5.25-6.25; at 6 A takes 5, 6-6.5. At 8 both are idle: 6 (low) and 7 (high) arrive
    together and start at once in order of arrival, 8-9; 8 (high) waits for one, 9-10.
    """
    team = SupportTeam(agents=2, hours_per_month=1.0, service_time="fixed", mean_hours=1.0)
    start, finish, order = _starts_and_finishes(
        team,
        arrivals=[0.0, 1.0, 1.5, 2.0, 2.5, 2.75, 8.0, 8.0, 8.0],
        priority=[1.0, 1.0, 1.0, 3.0, 3.0, 1.0, 1.0, 3.0, 3.0],
        hours=[3.0, 4.25, 1.0, 2.0, 1.0, 0.5, 1.0, 1.0, 1.0])
    assert start.tolist() == [0.0, 1.0, 5.25, 3.0, 5.0, 6.0, 8.0, 8.0, 9.0]
    assert finish.tolist() == [3.0, 5.25, 6.25, 5.0, 6.0, 6.5, 9.0, 9.0, 10.0]
    assert order[:6].tolist() == [0, 3, 1, 4, 2, 5]  # in order of finishing
    assert sorted(order[6:8].tolist()) == [6, 7] and order[8] == 8


def test_event_desk_starts_a_complaint_exactly_on_arrival() -> None:
    """An idle agent waits for the next arrival; ``free + (arrival - free)`` can miss the
    arrival by an ulp, and the complaint must start at its own arrival time all the same."""
    free, arrival = 0.19601960889828834, 0.7160746296035653
    assert free + (arrival - free) != arrival  # the case at hand
    team = SupportTeam(agents=1, hours_per_month=1.0, service_time="fixed", mean_hours=1.0)
    env = simpy.Environment()
    desk = SupportDesk(env, team)
    desk.submit(np.arange(2), np.array([0.0, arrival]), np.ones(2), np.full(2, 100.0),
                np.array([free, 0.25]))
    env.run()
    acc, days, _, _ = desk.collect()
    assert acc.tolist() == [0, 1]
    assert days[1] == ((arrival + 0.25) - arrival) * DAYS_PER_MONTH


def _answered(team: SupportTeam, arrivals: np.ndarray, priority: np.ndarray,
              hours: np.ndarray, by: str, env: simpy.Environment | None = None
              ) -> list[tuple[int, float]]:
    """(complaint, response days) in the order answered, driven as the engine does (at each
    month's start: that month's arrivals, then what was answered so far), by the
    ``SupportDesk`` or by a SimPy ``PriorityResource`` with one process and one request per
    complaint (the discipline the desk reproduces at one event per complaint)."""
    env = env if env is not None else simpy.Environment()
    answered: list[tuple[int, float]] = []
    desk = SupportDesk(env, team)
    agents = simpy.PriorityResource(env, capacity=team.agents)

    def complaint(i: int):  # type: ignore[no-untyped-def]
        yield env.timeout(arrivals[i] - env.now)
        with agents.request(priority=-priority[i]) as req:
            yield req
            yield env.timeout(hours[i] / team.hours_per_month)
        answered.append((i, (env.now - arrivals[i]) * DAYS_PER_MONTH))

    month = np.floor(arrivals).astype(np.int64)

    def months():  # type: ignore[no-untyped-def]
        for k in range(int(month.max()) + 60):
            idx = np.flatnonzero(month == k)
            if by == "desk":
                desk.submit(idx, arrivals[idx], priority[idx], np.full(idx.size, 5.0),
                            hours[idx])
                acc, days, _, _ = desk.collect()
                answered.extend(zip(acc.tolist(), days.tolist(), strict=True))
            else:
                for i in idx[np.argsort(arrivals[idx], kind="stable")]:
                    env.process(complaint(int(i)))
            yield env.timeout(1.0)

    env.process(months())
    env.run()
    return answered


def test_event_desk_serves_as_a_priority_resource_does() -> None:
    """Same order of answers and the same response times to the last bit as a SimPy
    ``PriorityResource`` with a request per complaint: 1-5 agents, three priorities, the
    three laws of work, loads from 0.6 to 1.1 (so complaints do wait, and across months)."""
    for seed in range(15):
        rng = np.random.default_rng(seed)
        team = SupportTeam(agents=1 + seed % 5, hours_per_month=140.0, mean_hours=6.0,
                           service_time=("exponential", "lognormal", "fixed")[seed % 3])
        rho = 0.6 + 0.5 * rng.random()
        n = int(rng.poisson(rho * team.agents * team.hours_per_month / team.mean_hours * 8))
        arrivals = np.sort(rng.uniform(0.0, 8.0, n))
        priority = rng.integers(1, 4, n).astype(np.float64)
        hours = work_hours(team, rng.random(n))
        desk = _answered(team, arrivals, priority, hours, "desk")
        assert len(desk) == n
        assert desk == _answered(team, arrivals, priority, hours, "resource"), seed


class _OwnSchedule(simpy.Environment):
    """An environment that schedules through a method of its own (and counts the events)."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def schedule(self, event: simpy.Event, priority: int = 1, delay: float = 0) -> None:
        self.scheduled += 1
        super().schedule(event, priority, delay)


def test_event_desk_in_an_environment_that_schedules_its_own_way() -> None:
    """The desk puts its services on SimPy 4's queue itself (complaints._Service) only where
    ``Environment.schedule`` is SimPy's own; under a subclass that schedules its own way it
    makes each service a ``Timeout``, which goes through that method, and answers the same,
    to the last bit."""
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        team = SupportTeam(agents=1 + seed % 3, hours_per_month=140.0, mean_hours=6.0,
                           service_time=("exponential", "lognormal", "fixed")[seed % 3])
        n = int(rng.poisson(0.9 * team.agents * team.hours_per_month / team.mean_hours * 4))
        arrivals = np.sort(rng.uniform(0.0, 4.0, n))
        priority = rng.integers(1, 4, n).astype(np.float64)
        hours = work_hours(team, rng.random(n))
        own = _OwnSchedule()
        answered = _answered(team, arrivals, priority, hours, "desk", own)
        assert own.scheduled > n  # every service went through the subclass's schedule
        assert answered == _answered(team, arrivals, priority, hours, "desk"), seed
        assert answered == _answered(team, arrivals, priority, hours, "resource"), seed


def _poisson(rng: np.random.Generator, rate: float, n: int) -> np.ndarray:
    return np.cumsum(rng.exponential(1.0 / rate, n))


def test_one_agent_is_an_mm1_queue() -> None:
    rng = np.random.default_rng(20261123)
    mu = ONE_AGENT.hours_per_month / ONE_AGENT.mean_hours  # complaints per month
    lam = 0.5 * mu
    batches = []
    for _ in range(20):  # independent busy periods: a t-interval over batch means
        n = 2000
        hours = work_hours(ONE_AGENT, rng.random(n))
        response, _ = _event_level(ONE_AGENT, _poisson(rng, lam, n), np.zeros(n),
                                   np.full(n, 10.0), hours)
        batches.append(response.mean())
    b = np.array(batches)
    theory = 1.0 / (mu - lam)
    se = b.std(ddof=1) / np.sqrt(b.size)
    # 4 standard errors, plus 3% for the empty-queue start of each batch
    assert abs(b.mean() - theory) < 4 * se + 0.03 * theory, (b.mean(), theory, se)


def test_mm1_response_grows_with_load() -> None:
    rng = np.random.default_rng(7)
    mu = ONE_AGENT.hours_per_month / ONE_AGENT.mean_hours
    means = []
    for rho in (0.3, 0.6, 0.8):
        n = 20000
        hours = work_hours(ONE_AGENT, rng.random(n))
        response, _ = _event_level(ONE_AGENT, _poisson(rng, rho * mu, n), np.zeros(n),
                                   np.full(n, 10.0), hours)
        means.append(response.mean())
        assert abs(response.mean() * (mu - rho * mu) - 1.0) < 0.15  # within 15% of M/M/1
    assert means[0] < means[1] < means[2]


def test_priority_classes_follow_cobham() -> None:
    """Non-preemptive priority M/M/1, two classes of equal load and the same work: mean wait
    of class i is W0 / ((1 - sigma_{i-1})(1 - sigma_i)), W0 = lambda E[S^2] / 2."""
    rng = np.random.default_rng(11)
    mu = ONE_AGENT.hours_per_month / ONE_AGENT.mean_hours
    lam = 0.6 * mu
    n = 40000
    arrivals = _poisson(rng, lam, n)
    high = rng.random(n) < 0.5
    priority = np.where(high, 3.0, 1.0)
    hours = work_hours(ONE_AGENT, rng.random(n))
    response, _ = _event_level(ONE_AGENT, arrivals, priority, np.full(n, 10.0), hours)
    service = hours / ONE_AGENT.hours_per_month
    wait = response - service
    assert np.all(wait >= -1e-12)
    w0 = lam * (2.0 / mu**2) / 2.0
    rho1 = 0.5 * lam / mu
    rho = lam / mu
    theory_high = w0 / (1.0 - rho1)
    theory_low = w0 / ((1.0 - rho1) * (1.0 - rho))
    assert wait[high].mean() < wait[~high].mean()
    assert abs(wait[high].mean() / theory_high - 1.0) < 0.12, (wait[high].mean(), theory_high)
    assert abs(wait[~high].mean() / theory_low - 1.0) < 0.12, (wait[~high].mean(), theory_low)


def _shares_in_time(agents: int, rho: float, months: int = 120, seed: int = 3
                    ) -> tuple[float, float]:
    """Share answered within target, event-level vs fluid, on the same complaints (two
    classes: priority 3 with a 2-day target, priority 1 with a 5-day target)."""
    rng = np.random.default_rng(seed)
    team = SupportTeam(agents=agents, hours_per_month=140.0, mean_hours=6.0)
    lam = rho * agents * team.hours_per_month / team.mean_hours
    n = int(rng.poisson(lam * months))
    arrivals = np.sort(rng.uniform(0.0, months, n))
    cls = rng.integers(0, 2, n)
    priority = np.where(cls == 0, 3.0, 1.0)
    target = np.where(cls == 0, 2.0, 5.0)
    hours = work_hours(team, rng.random(n))
    _, event_ok = _event_level(team, arrivals, priority, target, hours)
    fluid = FluidDesk(team, np.array([3.0, 1.0]))
    fluid_ok = np.zeros(n, dtype=bool)
    period = np.floor(arrivals).astype(np.int64)
    for k in range(months + 12):  # the engine's use: one submit and collect per period
        idx = np.flatnonzero(period == k)  # (then empty periods, for the last answers)
        fluid.submit(idx, arrivals[idx] - k, priority[idx], target[idx], hours[idx], 1.0)
        acc, _, _, ok = fluid.collect()
        fluid_ok[acc] = ok
    return float(event_ok.mean()), float(fluid_ok.mean())


def _collected_in(desk: str, team: SupportTeam, arrivals: np.ndarray, priority: np.ndarray,
                  hours: np.ndarray, months: int) -> np.ndarray:
    """The period at whose start each complaint's outcome is handed to the engine, driving
    the desk as the engine does (at each period start: this period's arrivals, then collect);
    -1 if never within ``months``."""
    n = arrivals.shape[0]
    period = np.floor(arrivals).astype(np.int64)
    target = np.full(n, 5.0)
    got = np.full(n, -1)
    env = simpy.Environment()
    queue = SupportDesk(env, team) if desk == "event" else FluidDesk(team, np.unique(priority))

    def periods():  # type: ignore[no-untyped-def]
        for k in range(months):
            idx = np.flatnonzero(period == k)
            if isinstance(queue, FluidDesk):
                queue.submit(idx, arrivals[idx] - k, priority[idx], target[idx], hours[idx],
                             1.0)
            else:
                queue.submit(idx, arrivals[idx], priority[idx], target[idx], hours[idx])
            acc = queue.collect()[0]
            assert (got[acc] == -1).all()  # each handed out once
            got[acc] = k
            yield env.timeout(1.0)

    env.process(periods())
    env.run()
    return got


def test_both_desks_hand_out_an_answer_when_it_is_done() -> None:
    """The engine learns of a complaint at the first period start after its work ends, from
    either desk: never in the period it arrives, and at a light load (no queue, both desks
    give the same response times) at the same period, so a portfolio that crosses
    ``event_level_max`` does not see its complaints counted a period earlier."""
    rng = np.random.default_rng(11)
    team = SupportTeam(agents=40, hours_per_month=140.0, mean_hours=30.0)
    n, months = 400, 24
    arrivals = np.sort(rng.uniform(0.0, months - 4, n))
    priority = np.ones(n)
    hours = work_hours(team, rng.random(n))
    event = _collected_in("event", team, arrivals, priority, hours, months)
    fluid = _collected_in("fluid", team, arrivals, priority, hours, months)
    arrived = np.floor(arrivals).astype(np.int64)
    assert (event > arrived).all() and (fluid > arrived).all()
    done = np.ceil(arrivals + hours / team.hours_per_month)  # no wait at this load
    assert (event == done).mean() > 0.99 and (fluid == done).mean() > 0.99
    assert (event == fluid).mean() > 0.99
    assert (fluid - arrived > 1).sum() > 20  # long jobs do cross a second period start


def test_fluid_desk_agrees_with_event_level_at_moderate_load() -> None:
    """The documented check of the aggregated treatment: at utilisation 0.5 with 8 agents the
    shares answered within target agree within 0.02. The fluid desk has no random queueing
    delay below capacity, so it is never less optimistic than the real queue."""
    event, fluid = _shares_in_time(agents=8, rho=0.5)
    assert abs(event - fluid) < 0.02, (event, fluid)
    event4, fluid4 = _shares_in_time(agents=4, rho=0.5)
    assert abs(event4 - fluid4) < 0.02, (event4, fluid4)
    assert fluid >= event - 0.005 and fluid4 >= event4 - 0.005


def test_fluid_desk_backlog_under_overload() -> None:
    """Above capacity the fluid backlog grows and late complaints pile up."""
    event, fluid = _shares_in_time(agents=2, rho=1.3, months=24)
    assert fluid < 0.5 and event < 0.5


def test_no_support_team_answers_nothing_in_time() -> None:
    team = SupportTeam(agents=0)
    n = 50
    rng = np.random.default_rng(0)
    response, in_time = _event_level(team, np.sort(rng.uniform(0, 3, n)), np.ones(n),
                                     np.full(n, 10.0), np.full(n, 6.0))
    assert not in_time.any()
    assert np.all(np.isinf(response))
    fluid = FluidDesk(team, np.array([1.0]))
    fluid.submit(np.arange(n), rng.random(n), np.ones(n), np.full(n, 10.0), np.full(n, 6.0), 1.0)
    assert fluid.collect()[0].size == 0  # handed out once arrived: from the next period
    e = np.zeros(0)
    fluid.submit(e.astype(np.int64), e, e, e, e, 1.0)
    acc, days, _, ok = fluid.collect()
    assert acc.size == n and not ok.any() and np.all(np.isinf(days))


def test_engine_without_support_team_leaves_every_complaint_unresolved() -> None:
    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml", [
        "portfolio.generate.accounts=150", "horizon_months=12", "replications=2",
        "capacity.support.agents=0", "market.complaint_rate_per_month=0.2"])
    ts = simulate(spec, workers=1).timeseries()
    assert ts["complaints"].sum() > 0
    assert (ts["complaints_unresolved"] == ts["complaints"]).all()


def test_engine_with_a_big_team_answers_most_in_time() -> None:
    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml", [
        "portfolio.generate.accounts=150", "horizon_months=12", "replications=2",
        "capacity.support.agents=50", "market.complaint_rate_per_month=0.2"])
    ts = simulate(spec, workers=1).timeseries()
    assert ts["complaints"].sum() > 0
    # no queue: only the work itself (exponential, mean 6 h at 140 h/month, ~1.3 days) can
    # overrun the 2-10 day targets
    assert ts["complaints_unresolved"].sum() < 0.35 * ts["complaints"].sum()
