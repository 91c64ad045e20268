"""The engine: a SimPy environment drives the calendar, the contended resources and the
scheduled events; account and stakeholder state are numpy arrays updated for all accounts
at once each period. docs/model.md states every equation used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import simpy

from kamsim import jit, lanes
from kamsim.dmu import StepParams, Units
from kamsim.dmu.arrays import read_only
from kamsim.dmu.context import Context
from kamsim.dmu.metrics import unit_fields
from kamsim.dmu.structure import STRUCTURAL_FIELDS, structure
from kamsim.engine.complaints import FluidDesk, SupportDesk
from kamsim.engine.prepare import Prepared
from kamsim.engine.record import TS_FIELDS, EventLog, ReplicationOutput
from kamsim.engine.rng import Streams
from kamsim.spec.models import CHURN_CAUSES, Shock
from kamsim.tiering import QUADRANTS
from kamsim.ufuncs import clip as _clip

__all__ = ["EngineOptions", "run_replication", "CAUSE"]


CAUSE = {name: i for i, name in enumerate(CHURN_CAUSES)}
_QUADRANT_NAMES = np.asarray(QUADRANTS, dtype=object)
#: the fields of :meth:`Simulation.fields` that are the wallet and the share or worked out
#: from them (kept with fields(): a rule reading one of them keeps the shares' and wallets'
#: move on the main thread, before the stages; Simulation.moves_beside)
_OF_WALLET_AND_SHARE = frozenset({"wallet", "share", "revenue", "gross_profit"})
#: by churn cause: does the account leave angry (and tell its followers)?
_ANGRY = np.isin(np.arange(len(CHURN_CAUSES)), [CAUSE["unresolved_complaints"],
                                                CAUSE["key_person_or_trust"],
                                                CAUSE["competitor_unfair"]])


@dataclass(frozen=True)
class EngineOptions:
    record_events: bool = True
    focus: int | None = None  # slot index of an account to trace period by period
    # threads a replication may use: with 2, the decision units of a large portfolio are
    # worked on in two halves at once and re-tiering ranks its indicators two at a time
    # (kamsim.lanes.side_by_side; the results do not change). 1 in worker processes and on
    # Dask, whose other cores run other replications.
    threads: int = 1
    # how many replications the process that runs this one is to run in all (its share of
    # the study): whether the compiled kernels repay numba's start-up depends on it
    # (kamsim.jit.wanted). It never changes a result.
    runs_here: int = 1

    def sharing(self, runs: int, processes: int) -> EngineOptions:
        """These options for one of ``processes`` processes that play ``runs`` replications
        between them: its share, rounded up, is :attr:`runs_here`."""
        return replace(self, runs_here=-(-runs // max(1, processes)))


#: from this many slots on, a replication with two threads does the work that does not wait
#: for the rest on the other core (:func:`kamsim.lanes.aside`): the people's clocks while the
#: replication is set up, and in each period the departures, draws and money
#: (kamsim.engine.step.period_step), word of mouth in two lanes and the late sums by tier.
#: Below, a thread costs more than the few milliseconds it saves
ASIDE_MIN_SLOTS = 50_000


#: Units fields a run never writes into (see kamsim.dmu.structure: a newcomer keeps the post's
#: role, influence and holder): every replication shares the prepared arrays, read-only,
#: instead of copying them (at 1M accounts the copy was ~460 MB of the peak). A field not
#: listed here is copied, so a new mutable field is safe by default.
SHARED_UNIT_FIELDS = frozenset(STRUCTURAL_FIELDS) | {"seniority", "person_id", "reports_src",
                                                     "reports_dst"}


def _orders_kept(arrays: list[np.ndarray]) -> None:
    """On the other core (a helper lane), the order a sort of each of ``arrays`` keeps
    (kamsim.rules.functions.keep_order) worked out now, while the set-up works: the first
    re-tiering worked out these orders (~0.25 s at 1M accounts: a sort, a copy and a
    check of each ranked field) while everything waited for it."""
    if lanes.lane() == 1:
        from kamsim.rules.functions import keep_order

        for a in arrays:
            keep_order(a)


def _waits(u: np.ndarray, lam: np.ndarray | float) -> np.ndarray:
    """``-np.log1p(-u) / lam`` worked out in ``u``, the same operations in the same order:
    at 1M accounts the people's first departures made four temporaries of 68 MB each, fresh
    pages that the other core spent ~0.4 s touching while the set-up waited for them."""
    np.negative(u, out=u)
    np.log1p(u, out=u)
    np.negative(u, out=u)
    return np.divide(u, lam, out=u)


def replication_units(shared: Units) -> Units:
    """The decision units one replication plays with: its own copy of what changes
    (attitudes, coverage, time in post, price focus), read-only views of the structure, and
    the structure cache computed once for ``shared`` (the prepared starting point)."""
    kw: dict[str, Any] = {}
    for f in fields(shared):
        if not f.init:
            continue
        v = getattr(shared, f.name)
        if isinstance(v, np.ndarray):
            v = read_only(v.view()) if f.name in SHARED_UNIT_FIELDS else v.copy()
        kw[f.name] = v
    units = Units(**kw)
    units._cache = structure(shared).rebound(units)
    return units


class Fields(dict[str, np.ndarray]):
    """The account fields rule expressions read, as a dict whose derived fields are worked
    out on first read (then kept): a period's stage rules read four fields, while the name
    fields (``stage``, ``tier``, ``quadrant``: object arrays of 3k strings) cost ~15 us each.

    Anything that lists or copies the fields (``in``, iteration, ``keys``, ``{**env}``,
    ``dict(env)``, ``len``, ...) sees every field: listing them works all of them out first.
    A derived field is computed from the arrays it closed over when the fields were built.
    """

    def __init__(self, eager: dict[str, np.ndarray],
                 lazy: dict[str, Callable[[], np.ndarray]]) -> None:
        super().__init__(eager)
        self._lazy = lazy

    def __missing__(self, key: str) -> np.ndarray:
        make = self._lazy.pop(key)  # a KeyError for a field that does not exist
        value = self[key] = make()
        return value

    def _every(self) -> None:
        for key in list(self._lazy):
            self[key]  # noqa: B018 - works the field out

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._lazy

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __iter__(self) -> Iterator[str]:
        self._every()
        return dict.__iter__(self)

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._lazy)

    def keys(self) -> Any:  # dict's own views, of every field
        self._every()
        return dict.keys(self)

    def values(self) -> Any:  # dict's own views, of every field
        self._every()
        return dict.values(self)

    def items(self) -> Any:  # dict's own views, of every field
        self._every()
        return dict.items(self)

    def copy(self) -> dict[str, np.ndarray]:
        self._every()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self._every()
        return dict.__eq__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        self._every()
        return dict.__repr__(self)

    def __reduce__(self) -> Any:
        return dict, (self.copy(),)


def _p(rate_per_year: float | np.ndarray, dt: float) -> np.ndarray | float:
    """Probability of at least one event in ``dt`` months at a yearly hazard rate given as a
    yearly probability."""
    r = _clip(rate_per_year, 0.0, 1.0 - 1e-12)
    return 1.0 - (1.0 - r) ** (dt / 12.0)


class Simulation:
    """One replication. ``run()`` plays the whole horizon; state is in numpy arrays."""

    def __init__(self, prep: Prepared, streams: Streams, options: EngineOptions,
                 replication: int = 0, on_period: Callable[[int, int], None] | None = None):
        self.prep = prep
        self.on_period = on_period  # told (periods done, periods) after each period
        self.model = prep.model
        self.sc = prep.model.spec.scenario
        self.market = self.sc.market
        self.rng = streams
        self.options = options
        self.replication = replication
        self.dt, self.periods = self.sc.time_grid()
        self.env = simpy.Environment()
        # the names rule expressions see for the stage and tier indices
        self._stage_names = np.asarray(self.model.stages.names, dtype=object)
        self._tier_names = np.asarray(self.model.tiers, dtype=object)
        n = prep.n_slots
        nums = prep.accounts.numbers
        self.n = n
        self.active = np.zeros(n, dtype=bool)
        self.active[: prep.n_start] = True
        self.born = np.where(self.active, 0, -1).astype(np.int32)
        self.churn_period = np.full(n, -1, dtype=np.int32)
        self.churn_cause = np.full(n, -1, dtype=np.int8)
        self.wallet = nums["wallet"].copy()
        self.share = nums["share"].copy()
        self.margin = nums["margin"]
        self.loyalty = nums["loyalty"]
        self.growth = nums["growth_potential"]
        self.influence = nums["influence"]
        self.payment_risk = nums["payment_risk"]
        self.price_sensitivity = nums["price_sensitivity"]
        self.tenure = nums["tenure_months"].copy()
        self.trust = prep.trust.copy()
        self.stage = prep.stage.copy()
        self.initial_stage = read_only(prep.stage.view())
        self.months_in_stage = np.zeros(n)
        self.tier = prep.tier.copy()
        self.initial_tier = read_only(prep.tier.view())
        self.score = prep.score.copy()
        self.quadrant = prep.quadrant.copy()
        self.service_ratio = np.ones(n)
        self.complaints_open = np.zeros(n)  # decays: unresolved complaints, last ~6 months
        self.since_unresolved = np.full(n, 1e9)
        #: the threads for the work of a period that does not wait for the rest of it
        self.aside_threads = options.threads if n >= ASIDE_MIN_SLOTS else 1
        roles = prep.model.spec.stakeholders.roles
        self.roles = [roles[name] for name in prep.units.role_names]
        self.turnover = np.array([r.turnover_per_year for r in self.roles])
        # departures per month by role, from the yearly probability (looked up per person:
        # the same values as working each person's out)
        self.departure_lam = -np.log1p(-np.clip(self.turnover, 0.0, 1 - 1e-12)) / 12.0
        self.complaint_rate = self.market.complaint_rate_per_month
        # event clocks drawn for every slot, whatever happens, to keep streams aligned: with
        # two threads on the other core while the decision units are set up (they read only
        # the people's roles, shared by every replication, and their own stream)
        # (and then, there, the orders of the fields each re-tiering ranks kept: see
        # _orders_kept)
        clocks, kept = lanes.aside_each(
            self.aside_threads, (self._clocks, prep.units.role, n),
            (_orders_kept, self._ranked_again(nums)))
        self.units = replication_units(prep.units)
        self.dmu_threshold = prep.model.spec.stakeholders.influence_threshold
        self.dmu_params = StepParams(dt_months=self.dt,
                                     newcomer_price_focus=self.market.newcomer_price_focus)
        # whether the compiled kernels run (kamsim.jit): decided once for the run, as it is
        # one decision for every period (the environment is read in ~10 µs, three times a
        # period when asked each time), by the work the process is to do
        self.kernels = jit.wanted(self.units.n_people, self.periods, options.runs_here)
        # the decision units' step and metrics, their set-up done once for the replication
        self.dmu = Context(self.units, self.dmu_params, self.roles, self.dmu_threshold,
                           threads=options.threads, kernels=self.kernels)
        # (the clocks taken first: the metrics use both cores)
        self.next_departure, self.next_complaint = clocks()
        del clocks
        self.metrics = self.dmu.metrics()
        kept()
        del kept
        # the decision units' leaving draws: 1 (stays) for everyone but the people due to
        # leave this period, who get 0 for the period and 1 back after it. One reused array:
        # a fresh one is a page-faulted 48 MB a month at 1M accounts (~50 ms). float32 holds
        # 0 and 1 exactly and halves what the array adds to the peak memory
        self.u_depart = np.ones(self.units.n_people, dtype=np.float32)
        # what the period step reads that no period changes (worked out once, in the same
        # operations, so the values are the same): the bounds of the competing risks that do
        # not depend on the state (failure, strategy change, consolidation), the default
        # probability, each stage's monthly referral rate, the wallet drift
        mk = self.market
        p_fail = _p(mk.failure_per_year * (0.5 + 2.0 * self.payment_risk), self.dt)
        b_strat = p_fail + _p(mk.strategy_change_per_year, self.dt)
        self.event_bounds: tuple[np.ndarray, ...] = tuple(
            np.asarray(b) for b in (p_fail, b_strat,
                                    b_strat + _p(mk.consolidation_per_year, self.dt)))
        self.p_default = np.asarray(
            _p(mk.default_per_year * (0.5 + 3.0 * self.payment_risk), self.dt))
        # the highest running sum of the events' probabilities but that of an offer (the
        # events can only happen to a slot whose uniform lies below it plus an offer's)
        self.event_reach = float(np.max(self.event_bounds[2] + self.p_default, initial=0.0))
        self.referral_rate = self.model.stages.referral / 12.0 * self.dt * 2.0
        self.wallet_drift = (mk.wallet_growth_per_year + self.growth) / 12.0 * self.dt
        # wallet_volatility is yearly: a period of dt months has sigma * sqrt(dt / 12), so a
        # year of periods, of months or of weeks, has sigma
        self.wallet_sigma = mk.wallet_volatility * math.sqrt(self.dt / 12.0)
        self.cost_share = 1.0 - self.margin  # of the revenue: the cost of goods sold
        # money and results, per slot
        self.acc = {k: np.zeros(n) for k in ("revenue", "discounts", "cogs", "cost_to_serve",
                                              "acquisition", "bad_debt", "profit", "clv")}
        # the period's draws (events, decisions, offers, wallets, referrals) and its money
        # (with the kernels: discounts, cost of goods, cost to serve, bad debt, profit), one
        # a slot, written into these rows each period: each is read within its period only.
        # Made afresh they were ~10 new arrays a period on the helper thread (~120 MB at 1M
        # accounts), whose memory glibc handed back and took again, zeroed, every period
        self.draws = np.empty((5, n))
        self.money_rows = np.empty((5, n))
        # whether a period's shares and wallets may move on the other core beside the stages
        # (kamsim.engine.step._money_and_moves): only if no stage rule reads them
        st = self.model.stages
        reads = frozenset().union(*(rule.names for rule in (*st.up, *st.down, st.uncouple,
                                                            st.recover) if rule is not None))
        self.moves_beside = not reads & _OF_WALLET_AND_SHARE
        self.d_month = (1.0 + self.sc.discount_rate) ** (1.0 / 12.0) - 1.0
        # scenario-level multipliers changed by shocks
        self.offer_mult = 1.0
        self.price_gap = self.market.price_gap
        self.capacity_mult = 1.0
        self.budget_mult = 1.0
        self.unfair_share = self.market.unfair_offer_share
        #: the shocks in force, in the order they started (what the multipliers are made of)
        self._active_shocks: list[Shock] = []
        self.cold_accumulator = 0.0
        self.next_free = prep.n_start
        # outputs
        nt = len(self.model.tiers)
        ns = len(self.model.stages.names)
        self.ts = {k: np.zeros((self.periods, nt)) for k in TS_FIELDS}
        self.stage_counts = np.zeros((self.periods, nt, ns))
        self.transitions = np.zeros((self.periods, nt, ns + 1, ns + 1))
        self.causes = np.zeros((self.periods, nt, len(CHURN_CAUSES)))
        self.util = np.zeros((self.periods, 4))
        self.log = EventLog() if options.record_events else None
        self.trace: list[dict[str, Any]] | None = [] if options.focus is not None else None
        team = self.sc.capacity.support
        expected = prep.n_start * self.market.complaint_rate_per_month * self.dt
        self.fluid = expected > team.event_level_max
        self.desk: SupportDesk | FluidDesk
        if self.fluid:
            self.desk = FluidDesk(team, self.model.service.priority)
        else:
            self.desk = SupportDesk(self.env, team)

    def _ranked_again(self, nums: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The arrays each re-tiering of this run will rank as they are: the fields an
        indicator ranks (CompiledTiering.ranked_fields) that no period changes (the
        prepared numbers but the wallet, share and tenure, which are the run's own); none
        if the run does not re-tier."""
        every = self.model.tiering.every_months
        if every <= 0 or self.period_of(every) >= self.periods:
            return []
        own = {"wallet", "share", "tenure_months"}  # (see fields)
        return [nums[name] for name in sorted(self.model.tiering.ranked_fields)
                if name in nums and name not in own]

    def _clocks(self, role: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first clocks, from the ``clocks`` stream: each person's next departure (at
        the rate of their ``role``), then each of the ``n`` slots' next complaint."""
        clocks = self.rng["clocks"]
        return (self._exp_times(clocks, self.departure_lam[role]),
                self._exp_times(clocks, self.complaint_rate, n))

    def complaint_gaps(self, size: int) -> np.ndarray:
        """Months to each of ``size`` accounts' next complaint (every account has the same
        rate)."""
        return self._exp_times(self.rng["complaints"], self.complaint_rate, size)

    @staticmethod
    def _exp_times(rng: np.random.Generator, lam: np.ndarray | float,
                   size: int | None = None) -> np.ndarray:
        """Exponential waiting times (months) at the rates ``lam`` per month, one uniform
        each: one rate per value, or one rate for ``size`` values (no per-value arrays to
        build); inf where the rate is 0."""
        if isinstance(lam, np.ndarray):
            u = rng.random((lam.shape[0],))
            # (NaN is no minimum above 0: as np.all(lam > 0) says)
            if lam.min(initial=np.inf) > 0:  # (the usual case: the same values, no np.where)
                return _waits(u, lam)
            positive = lam > 0
            with np.errstate(divide="ignore"):
                return np.where(positive, _waits(u, np.where(positive, lam, 1.0)), np.inf)
        assert size is not None, "one rate needs a size"
        gaps = rng.random((size,))
        return _waits(gaps, lam) if lam > 0 else np.full(size, np.inf)

    # ------------------------------------------------------------------ expression fields

    def fields(self) -> Fields:
        """The account fields rule expressions read (docs/model.md lists them), as of now:
        the derived ones are worked out on first read, from the arrays of this moment."""
        m = self.metrics
        nums = self.prep.accounts.numbers
        wallet, share, margin, stage = self.wallet, self.share, self.margin, self.stage
        tier, quadrant, red_flags = self.tier, self.quadrant, m.red_flags
        stage_names, tier_names = self._stage_names, self._tier_names
        return Fields({
            **nums, "wallet": wallet, "share": share, "tenure_months": self.tenure,
            "segment": self.prep.accounts.segment, "industry": self.prep.accounts.industry,
            "trust": self.trust, "months_in_stage": self.months_in_stage,
            "service_ratio": self.service_ratio, **unit_fields(m, red_flags=False),
            "complaints_open": self.complaints_open, "score": self.score,
        }, {  # (a new field of the wallet or the share goes into _OF_WALLET_AND_SHARE too)
            "revenue": lambda: wallet * share,
            "gross_profit": lambda: wallet * share * margin,
            "stage": lambda: stage_names[stage],
            "stage_index": lambda: stage.astype(np.float64),
            "red_flags": lambda: red_flags.astype(np.float64),
            "tier": lambda: tier_names[tier],
            "quadrant": lambda: _QUADRANT_NAMES[quadrant],
        })

    # ------------------------------------------------------------------ SimPy processes

    def period_of(self, month: float) -> int:
        """The first period that starts at or after ``month``: a shock or re-tiering at month
        M applies from it on (with weeks, month 12 is period 52; month 1 is period 5, the
        first week that starts after it)."""
        return int(math.ceil(month / self.dt - 1e-9))

    def at_period(self, k: int) -> simpy.Timeout:
        """A timeout from the start of the run (now) to the start of period k, exactly k·dt:
        ``0 + k·dt`` is k·dt, so it ends at the very time the calendar's step k runs. Made
        at the start of the run it comes before the calendar's timeout of that time (SimPy
        runs the events of one time in the order they were made), so what it does applies
        from period k on. A sum of dt's would drift: 52 weeks of 12/52 add up to 11.99...,
        and the step of month 12 ran before a shock at month 12."""
        assert self.env.now == 0.0, "made at the start of the run only"
        return self.env.timeout(k * self.dt)

    def calendar(self):
        # the shocks and re-tierings due at month 0 (made before this process started) go
        # first, so they apply from period 0 on as from any other period
        yield self.env.timeout(0.0)
        for k in range(self.periods):
            self.step(k)
            if self.on_period is not None:
                self.on_period(k + 1, self.periods)
            # to exactly (k + 1)·dt: k·dt + ((k + 1)·dt - k·dt) is exact (the two are within a
            # factor of 2 of each other, so the difference is exact, Sterbenz), not a sum of
            # dt's, so step k runs at k·dt, on the grid the shocks and re-tierings wait for
            yield self.env.timeout((k + 1) * self.dt - self.env.now)

    def shock(self, shock: Shock):
        on = self.period_of(shock.at_month)
        if on >= self.periods:
            return  # past the horizon
        # both timeouts made now, at the start of the run, on the calendar's exact grid
        start = self.at_period(on)
        end = (self.at_period(self.period_of(shock.until_month))
               if shock.until_month is not None and shock.until_month > shock.at_month
               else None)
        yield start
        self._apply_shock(shock, on=True)
        if self.log is not None:
            self.log.add(on, np.array([-1]), "shock",
                         ["competitor_entry", "recession", "am_attrition", "price_war",
                          "budget_cut"].index(shock.kind))
        if end is not None:
            yield end
            self._apply_shock(shock, on=False)

    def _apply_shock(self, s: Shock, on: bool) -> None:
        """Start (``on``) or end shock ``s``. The multipliers in force are worked out anew
        from the shocks active now, each the product of theirs, not undone by division: a
        capacity_multiplier 0 cannot be divided out (it used to be set to 0 and back to 1
        whatever else was active, and the other shock's end then divided by its own
        multiplier: a budget cut to half with a freeze inside it ended at twice the budget),
        and a shock that ends brings back exactly the value before it. Overlapping shocks
        compose: two halvings give a quarter; a price_gap is that of the latest shock still
        active that sets one; a price war lasts while any does."""
        active = self._active_shocks
        if on:
            active.append(s)
        else:
            active.remove(s)
        self.offer_mult = math.prod((a.offer_rate_multiplier for a in active), start=1.0)
        self.capacity_mult = math.prod((a.capacity_multiplier for a in active
                                        if a.kind == "am_attrition"), start=1.0)
        self.budget_mult = math.prod((a.capacity_multiplier for a in active
                                      if a.kind == "budget_cut"), start=1.0)
        gaps = [a.price_gap for a in active if a.price_gap is not None]
        self.price_gap = gaps[-1] if gaps else self.market.price_gap
        self.unfair_share = (min(1.0, self.market.unfair_offer_share * 2)
                             if any(a.kind == "price_war" for a in active)
                             else self.market.unfair_offer_share)
        if s.wallet_multiplier != 1.0:
            # the market's wallets, those of the accounts yet to arrive too; the lost keep
            # the wallet they left with (as in period_step). Wallets are state (they grow in
            # between), so the end divides the shock's own factor out; it is never 0
            f = 1.0 if on else -1.0
            self.wallet[self.churn_period < 0] *= s.wallet_multiplier ** f

    def retiering(self):
        every = self.model.tiering.every_months
        if every <= 0:
            return
        # every re-tiering's timeout made now, at the start of the run, on the calendar's exact
        # grid: the j-th at month j·every (a product, not a sum), in the period that month
        # falls in; none past the horizon
        due = []
        j = 1
        while (k := self.period_of(j * every)) < self.periods:
            due.append(self.at_period(k))
            j += 1
        for timeout in due:
            yield timeout
            self._pending_retier = True

    _pending_retier = False
    #: whether the engine's kernels can take this replication's arrays (see
    #: kamsim.engine.step._kernels_fit): None until its first period with kernels
    _kernels_fit: bool | None = None

    def step(self, k: int) -> None:
        from kamsim.engine.step import period_step

        period_step(self, k)

    def output(self) -> ReplicationOutput:
        ever = np.flatnonzero(self.born >= 0)  # every slot that was ever in the portfolio
        accounts: dict[str, np.ndarray] = {
            "slot": ever, "born": self.born[ever], "initial_tier": self.initial_tier[ever],
            "tier": self.tier[ever], "initial_stage": self.initial_stage[ever],
            "stage": self.stage[ever], "active": self.active[ever],
            "churn_period": self.churn_period[ever], "churn_cause": self.churn_cause[ever],
            "trust": self.trust[ever], "coverage": self.metrics.coverage[ever],
            "multithreading": self.metrics.multithreading[ever],
            **{k: v[ever] for k, v in self.acc.items()},
        }
        return ReplicationOutput(
            replication=self.replication, periods=self.periods, dt=self.dt, ts=self.ts,
            stage_counts=self.stage_counts, transitions=self.transitions,
            churn_causes=self.causes, utilisation=self.util, accounts=accounts,
            events=self.log.arrays() if self.log is not None else None, trace=self.trace)

    def run(self) -> ReplicationOutput:
        processes = [*(self.shock(s) for s in self.sc.shocks), self.retiering(),
                     self.calendar()]
        for p in processes:
            self.env.process(p)
        self.env.run(until=self.periods * self.dt + 1e-9)
        # The processes still wait on events past the horizon, and their frames hold this
        # simulation: a cycle (simulation -> environment -> events -> processes -> frames)
        # that only the cycle collector frees, so a worker running replication after
        # replication held several replications' arrays at a time (+30 MB at 10k accounts).
        # Closed, they let the simulation go as soon as its output is made.
        for p in processes:
            p.close()
        return self.output()


def run_replication(prep: Prepared, seq: np.random.SeedSequence, replication: int = 0,
                    options: EngineOptions | None = None,
                    on_period: Callable[[int, int], None] | None = None) -> ReplicationOutput:
    """Play one random future of the prepared scenario; ``on_period(done, periods)`` is
    called after each period (e.g. to move a progress bar through a long replication)."""
    return Simulation(prep, Streams(seq), options or EngineOptions(), replication,
                      on_period).run()
