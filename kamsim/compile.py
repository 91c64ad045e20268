"""Compile a validated scenario into what the engine runs: expressions as vectorised
functions, service levels and stage effects as arrays indexed by tier and stage.

Nothing here reads files: the input is a :class:`~kamsim.spec.load.ScenarioSpec`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from kamsim.fields import field_types
from kamsim.portfolio import Accounts
from kamsim.rules.expr import Expr, compile_expr
from kamsim.spec.load import ScenarioSpec
from kamsim.tiering import CompiledTiering, compile_tiering

if TYPE_CHECKING:
    from kamsim.dmu.metrics import Metrics

__all__ = ["ServiceArrays", "StageArrays", "CompiledModel", "compile_model", "initial_env",
           "initial_trust", "initial_stage", "TIERING_OUTPUTS"]


@dataclass(frozen=True)
class ServiceArrays:
    """Service levels as arrays indexed by tier (hours and money per month)."""

    am_hours: np.ndarray
    exec_hours: np.ndarray
    specialist_hours: np.ndarray
    discount: np.ndarray
    response_days: np.ndarray
    vip_cost: np.ndarray
    joint_dev: np.ndarray
    fixed_cost: np.ndarray
    priority: np.ndarray
    #: class of each level's priority, 0 for the highest (``np.unique`` of ``-priority``),
    #: and how many distinct priorities: what allocation's ServiceOrder.by_level needs
    priority_class: np.ndarray
    n_priority_classes: int
    rate_am: float
    rate_exec: float
    rate_specialist: float
    rate_support: float
    currency: str

    # sums over the arrays above that a period reads (worked out once, on first use, not
    # every period: the arrays are not changed once compiled)
    @cached_property
    def vip_joint(self) -> np.ndarray:
        """``vip_cost + joint_dev`` of each level."""
        return self.vip_cost + self.joint_dev

    @cached_property
    def need_hours(self) -> np.ndarray:
        """``am_hours + exec_hours + specialist_hours`` of each level."""
        return self.am_hours + self.exec_hours + self.specialist_hours

    @cached_property
    def top_priority(self) -> float:
        """``float(priority.max())``."""
        return float(self.priority.max())


@dataclass(frozen=True)
class StageArrays:
    """Stage effects indexed by stage; the last index is the uncoupled stage."""

    names: tuple[str, ...]
    up: tuple[Expr | None, ...]
    down: tuple[Expr | None, ...]
    min_dwell: np.ndarray
    price_sensitivity: np.ndarray
    target_share: np.ndarray
    cost_to_serve: np.ndarray
    referral: np.ndarray
    uncouple: Expr
    recover: Expr | None
    uncoupled_churn: float

    @property
    def uncoupled(self) -> int:
        return len(self.names) - 1

    @property
    def ladder(self) -> int:
        """Number of stages on the ladder (uncoupled excluded)."""
        return len(self.names) - 1


@dataclass(frozen=True)
class CompiledModel:
    spec: ScenarioSpec
    tiering: CompiledTiering
    service: ServiceArrays
    stages: StageArrays
    priority: Expr | None  # custom strategy

    @property
    def tiers(self) -> tuple[str, ...]:
        return self.tiering.tiers


def _service(spec: ScenarioSpec, tiers: tuple[str, ...]) -> ServiceArrays:
    lv = [spec.service.levels[t] for t in tiers]

    def arr(f: object) -> np.ndarray:
        return np.array([f(x) for x in lv], dtype=np.float64)  # type: ignore[operator]

    r = spec.service.rates
    priority = arr(lambda x: x.priority)
    ranks, priority_class = np.unique(-priority, return_inverse=True)
    return ServiceArrays(
        am_hours=arr(lambda x: x.visits_per_month * x.hours_per_visit),
        exec_hours=arr(lambda x: x.exec_meetings_per_year / 12.0 * x.exec_hours_per_meeting),
        specialist_hours=arr(lambda x: x.specialist_hours_per_month
                             + x.intel_reports_per_year / 12.0 * x.intel_report_hours),
        discount=arr(lambda x: x.discount),
        response_days=arr(lambda x: x.complaint_response_days),
        vip_cost=arr(lambda x: x.vip_cost_per_month if x.vip else 0.0),
        joint_dev=arr(lambda x: x.joint_development_per_year / 12.0),
        fixed_cost=arr(lambda x: x.fixed_cost_per_month),
        priority=priority, priority_class=priority_class, n_priority_classes=int(ranks.size),
        rate_am=r.account_manager, rate_exec=r.executive, rate_specialist=r.specialist,
        rate_support=r.support, currency=spec.service.currency,
    )


def _stages(spec: ScenarioSpec) -> StageArrays:
    f = field_types()
    st = spec.stages.stages
    u = spec.stages.uncoupled

    def c(text: str | None) -> Expr | None:
        return compile_expr(text, f, expect="bool") if text else None

    def arr(values: Sequence[float]) -> np.ndarray:
        return np.array(values, dtype=np.float64)

    uncouple = c(u.when)
    assert uncouple is not None
    return StageArrays(
        names=(*[s.name for s in st], u.name),
        up=(*[c(s.up_when) for s in st], None),
        down=(*[c(s.down_when) for s in st], None),
        min_dwell=arr([s.min_dwell_months for s in st] + [0]),
        price_sensitivity=arr([s.price_sensitivity for s in st] + [u.price_sensitivity]),
        target_share=arr([s.target_share for s in st] + [u.target_share]),
        cost_to_serve=arr([s.cost_to_serve for s in st] + [1.0]),
        referral=arr([s.referral_propensity for s in st] + [0.0]),
        uncouple=uncouple, recover=c(u.recover_when), uncoupled_churn=u.churn_per_month,
    )


def compile_model(spec: ScenarioSpec) -> CompiledModel:
    tiering = compile_tiering(spec.tiering, spec.table_place)
    pr = spec.scenario.strategy.priority
    return CompiledModel(
        spec=spec, tiering=tiering, service=_service(spec, tiering.tiers), stages=_stages(spec),
        priority=compile_expr(pr, field_types(), expect="number") if pr else None,
    )


def initial_trust(loyalty: np.ndarray, tenure_months: np.ndarray) -> np.ndarray:
    """Starting trust (assumption): loyal, long-standing accounts trust us more."""
    return np.clip(0.25 + 0.45 * loyalty + 0.15 * np.minimum(tenure_months / 60.0, 1.0),
                   0.05, 0.95)


def initial_stage(stages_target_share: np.ndarray, tenure_months: np.ndarray,
                  share: np.ndarray, trust: np.ndarray, ladder: int, by_tenure: bool
                  ) -> np.ndarray:
    """Starting stage (assumption): one stage per two years of tenure, capped by the highest
    stage whose target share the account's share and trust already support."""
    if not by_tenure:
        return np.zeros(share.shape[0], dtype=np.int64)
    by_time = np.floor(tenure_months / 24.0).astype(np.int64)
    targets = stages_target_share[:ladder]
    by_share = np.searchsorted(targets, share + 0.1, side="right") - 1
    by_trust = np.floor(trust * ladder).astype(np.int64)
    return np.clip(np.minimum(np.minimum(by_time, by_share), by_trust), 0, ladder - 1)


#: the state fields the tiering itself works out: a tiering file may not read them (the
#: first tiering would see no value; kamsim.spec.load refuses them there), except ``score``
#: in the table, where it is the score the indicators just made
TIERING_OUTPUTS = ("tier", "score", "quadrant")


def initial_env(model: CompiledModel, accounts: Accounts, start: Metrics | None
                ) -> dict[str, np.ndarray]:
    """Account fields at the start of the run, as the first tiering reads them: the portfolio
    fields and every state field the start already has a value for, that of the run's first
    period (docs/model.md, "The start of a run").

    The starting trust and stage do not depend on the tier, so they are worked out first (as
    the run starts them); ``months_in_stage`` and ``complaints_open`` are 0 and
    ``service_ratio`` 1, as in the run. The decision units' fields are the values of
    ``start``, their metrics at the start (of all of ``accounts``' slots, measured once by
    kamsim.engine.prepare for this and every replication), added when the tiering reads one
    of them (None: it reads none, and the units need not be built). ``tier``, ``score`` and ``quadrant`` are left out: the tiering works them out, and
    its file may not read them."""
    env = accounts.env()
    n = accounts.n
    trust = initial_trust(env["loyalty"], env["tenure_months"])
    st = model.stages
    stage = initial_stage(st.target_share, env["tenure_months"], env["share"], trust,
                          st.ladder, model.spec.stages.initial == "by_tenure")
    env.update({
        "trust": trust, "stage": np.asarray(st.names, dtype=object)[stage],
        "stage_index": stage.astype(np.float64), "months_in_stage": np.zeros(n),
        "service_ratio": np.ones(n), "complaints_open": np.zeros(n),
    })
    from kamsim.dmu.metrics import unit_fields

    if model.tiering.reads_units:
        assert start is not None, "the tiering reads the decision units' metrics"
        env.update(unit_fields(start))
    return env
