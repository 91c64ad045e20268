"""Typed, validated models of the rule files and the scenario (pydantic v2).

Every model forbids unknown keys and is frozen: once a file has been validated, the rest of
kamsim passes these objects around and never sees raw dictionaries. Expressions are kept as
text here; :mod:`kamsim.spec.load` checks them against the account fields and reports bad
names at their column. Defaults are documented in ``docs/model.md`` with their source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

__all__ = [
    "Indicator", "TierRow", "TierTable", "Retier", "TieringRules",
    "ServiceLevel", "ServiceRules", "Stage", "StageRules",
    "RoleArchetype", "UnitTemplate", "StakeholderRules", "StakeholderPerson", "ExplicitUnit",
    "Distribution", "PortfolioGenerate", "PortfolioImport", "Portfolio",
    "Strategy", "Capacity", "SupportTeam", "Market", "Shock", "Scenario", "RuleRefs",
    "expr_text", "CAPACITY_SHOCKS", "ATTITUDES", "COVERAGE_LEVELS", "ROLE_NAMES", "HOLDERS", "CHURN_CAUSES",
]

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
NonNeg = Annotated[float, Field(ge=0.0)]
Pos = Annotated[float, Field(gt=0.0)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


def expr_text(value: Any) -> Any:
    """A YAML ``true``, ``false`` or finite number where an expression is due, as that
    expression's text (``when: true`` is the catch-all row ``"true"``, ``priority: 0`` the
    expression ``"0"``): YAML reads them as a bool or a number before kamsim sees them, and
    the rule language means the same by them, so asking for quotes would only be in the
    way. Anything else is left for the schema check."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and abs(value) != float("inf")
                                  and value == value):
        return repr(value)
    return value


#: (its JSON Schema says so too, so an editor does not flag `when: true`)
ExprText = Annotated[str, BeforeValidator(expr_text), Field(min_length=1, max_length=2000),
                     WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1,
                                                "maxLength": 2000},
                                               {"type": "boolean"}, {"type": "number"}]})]

#: the largest seed: the run store keeps seeds as signed 64-bit integers (DuckDB BIGINT)
SEED_MAX = 2**63 - 1

ATTITUDES = ("enemy", "non_supporter", "neutral", "supporter", "mentor")
COVERAGE_LEVELS = ("none", "brief", "multiple", "in_depth")
ROLE_NAMES = (
    "economic_buyer", "technical_evaluator", "user", "purchaser", "influencer", "champion",
)
HOLDERS = ("account_manager", "executive", "specialist")
#: the seven causes of key-account loss (domain.md section 6)
CHURN_CAUSES = (
    "strategy_change", "supplier_consolidation", "unresolved_complaints",
    "competitor_unfair", "stronger_competitor", "key_person_or_trust", "financial_failure",
)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleFile(Model):
    kamsim: Literal[1] = Field(1, description="file-format version")
    description: str = ""


# ---------------------------------------------------------------- tiering


class Indicator(Model):
    """One weighted indicator of the tiering scorecard."""

    expr: ExprText = Field(description="rule expression computing the raw indicator")
    weight: float = Field(description="weight in the score; negative for risks")
    normalize: Literal["rank", "minmax", "zscore", "none"] = Field(
        "rank", description="how raw values are put on a common 0-1 scale across the portfolio"
    )


class TierRow(Model):
    when: ExprText = Field(description="condition (true/false) on account fields and `score`")
    tier: Name
    priority: float = 0.0


class TierTable(Model):
    hit_policy: Literal["first", "unique", "priority"] = "first"
    rows: list[TierRow] = Field(min_length=1)
    default: Name = Field(description="tier of accounts no row matches (the else row)")


class Retier(Model):
    every_months: int = Field(default=12, ge=0, description="0 = tiers never change")
    hysteresis: float = Field(default=0.05, ge=0.0, le=0.5, description="score margin to change tier")


class QuadrantRule(Model):
    volume: ExprText = Field(default="rank_pct(revenue)", description="volume axis, 0-1")
    loyalty: ExprText = Field(default="loyalty", description="loyalty axis, 0-1")
    volume_cut: Prob = 0.5
    loyalty_cut: Prob = 0.5


class TieringRules(RuleFile):
    kind: Literal["tiering"]
    tiers: list[Name] = Field(min_length=1, description="tier names, most important first")
    indicators: dict[Name, Indicator] = Field(min_length=1)
    table: TierTable
    retier: Retier = Retier()
    quadrants: QuadrantRule = QuadrantRule()

    @model_validator(mode="after")
    def _tiers_exist(self) -> TieringRules:
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError("tier names must be unique")
        raise_placed(tier_refs(self.model_dump()))
        return self


# ---------------------------------------------------------------- service levels


class ServiceLevel(Model):
    visits_per_month: NonNeg = 0.0
    hours_per_visit: NonNeg = 2.0
    exec_meetings_per_year: NonNeg = 0.0
    exec_hours_per_meeting: NonNeg = 2.0
    specialist_hours_per_month: NonNeg = 0.0
    discount: float = Field(0.0, ge=0.0, lt=1.0, description="price discount (fraction)")
    complaint_response_days: Pos = 10.0
    vip: bool = False
    vip_cost_per_month: NonNeg = 0.0
    intel_reports_per_year: NonNeg = 0.0
    intel_report_hours: NonNeg = 4.0
    joint_development_per_year: NonNeg = 0.0
    fixed_cost_per_month: NonNeg = 0.0
    priority: int = Field(0, description="higher is served first when capacity is short")


class Rates(Model):
    account_manager: NonNeg = 60.0
    executive: NonNeg = 200.0
    specialist: NonNeg = 80.0
    support: NonNeg = 40.0


class ServiceRules(RuleFile):
    kind: Literal["service_levels"]
    currency: str = Field("EUR", max_length=8)
    rates: Rates = Rates()
    levels: dict[Name, ServiceLevel] = Field(min_length=1)


# ---------------------------------------------------------------- relationship stages


class Stage(Model):
    name: Name
    up_when: ExprText | None = Field(None, description="condition to move one stage up")
    down_when: ExprText | None = Field(None, description="condition to move one stage down")
    min_dwell_months: int = Field(3, ge=0)
    price_sensitivity: NonNeg = Field(1.0, description="multiplier on price sensitivity")
    target_share: Prob = Field(0.3, description="share of wallet the stage tends toward")
    cost_to_serve: NonNeg = Field(1.0, description="multiplier on service hours")
    referral_propensity: NonNeg = Field(
        0.0, description="referrals a year from an account at full trust with influence 0.5 "
        "(the rate is this x 2 influence x max(0, 2 trust - 1); docs/model.md)")


class Uncoupling(Model):
    name: Name = "uncoupled"
    when: ExprText = Field(default="trust < 0.2", description="condition to break down, from any stage")
    recover_when: ExprText | None = Field(default=None, description="condition to return to the first stage")
    churn_per_month: Prob = Field(default=0.15, description="monthly hazard of leaving once uncoupled")
    target_share: Prob = 0.05
    price_sensitivity: NonNeg = 1.5


class StageRules(RuleFile):
    kind: Literal["stages"]
    stages: list[Stage] = Field(min_length=1, description="ordered, first = earliest")
    uncoupled: Uncoupling = Uncoupling()
    initial: Literal["by_tenure", "first"] = "by_tenure"

    @model_validator(mode="after")
    def _unique(self) -> StageRules:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        if self.uncoupled.name in names:
            raise ValueError(f"uncoupled stage name {self.uncoupled.name!r} repeats a stage")
        return self


# ---------------------------------------------------------------- stakeholders


def _dist(**kw: float) -> dict[Any, float]:  # keys: the Literal of the field it fills
    return dict(kw)


class RoleArchetype(Model):
    influence: Prob = 0.5
    attitude: dict[Literal["enemy", "non_supporter", "neutral", "supporter", "mentor"], Prob] = (
        Field(default_factory=lambda: _dist(non_supporter=0.2, neutral=0.5, supporter=0.3))
    )
    coverage: dict[Literal["none", "brief", "multiple", "in_depth"], Prob] = Field(
        default_factory=lambda: _dist(none=0.3, brief=0.4, multiple=0.3)
    )
    turnover_per_year: Prob = Field(0.12, description="yearly hazard of leaving the post")
    held_by: Literal["account_manager", "executive", "specialist"] = "account_manager"
    seniority: int = Field(1, ge=0, le=5)
    price_focus: Prob = Field(0.3, description="weight this person puts on price")

    @model_validator(mode="after")
    def _sums(self) -> RoleArchetype:
        for name, dist in (("attitude", self.attitude), ("coverage", self.coverage)):
            total = sum(dist.values())
            if not dist:  # (it drew no one: everyone was neutral, or not covered at all)
                raise ValueError(f"{name} is empty, expected shares that sum to 1 (leave "
                                 f"`{name}` out for the default mix)")
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"{name} probabilities sum to {total:g}, expected 1")
        return self


class UnitTemplate(Model):
    roles: dict[Name, Annotated[int, Field(ge=0, le=50)]] = Field(
        description="how many people of each role"
    )


class EdgeRule(Model):
    source: Name
    target: Name
    kind: Literal["reports_to", "influences"]
    weight: Prob = 0.5
    sign: Literal["support", "conflict"] = "support"


class StakeholderPerson(Model):
    id: str = Field(min_length=1, max_length=64)
    role: Name
    influence: Prob | None = None
    attitude: Literal["enemy", "non_supporter", "neutral", "supporter", "mentor"] = "neutral"
    coverage: Literal["none", "brief", "multiple", "in_depth"] = "none"
    held_by: Literal["account_manager", "executive", "specialist"] | None = None
    months_in_post: int = Field(24, ge=0)
    reports_to: str | None = None


class ExplicitUnit(Model):
    people: list[StakeholderPerson] = Field(min_length=1)
    influences: list[tuple[str, str, float]] = Field(default_factory=list)


class StakeholderRules(RuleFile):
    kind: Literal["stakeholders"]
    roles: dict[Name, RoleArchetype] = Field(min_length=1)
    units: dict[Name, UnitTemplate] = Field(
        min_length=1, description="unit template per segment; `default` for the rest"
    )
    edges: list[EdgeRule] = Field(default_factory=list)
    influence_threshold: Prob = Field(0.3, description="a covered person above it is a thread")
    accounts: dict[str, ExplicitUnit] = Field(
        default_factory=dict, description="explicit maps for named accounts (override templates)"
    )

    @model_validator(mode="after")
    def _refs(self) -> StakeholderRules:
        raise_placed(role_refs(self.model_dump()))
        if "default" not in self.units:
            raise ValueError("units must include a `default` template")
        return self


# ---------------------------------------------------------------- scenario


class Distribution(Model):
    """A random distribution for a generated portfolio attribute."""

    dist: Literal["lognormal", "pareto", "uniform", "beta", "normal", "fixed"]
    median: Pos | None = None  # lognormal: a median <= 0 would make every value 0
    sigma: NonNeg | None = None  # lognormal, normal
    alpha: Pos | None = None  # pareto shape, beta a
    beta: Pos | None = None  # beta b
    minimum: float | None = None  # pareto scale, uniform low
    maximum: float | None = None  # uniform high
    mean: float | None = None  # normal
    value: float | None = None  # fixed
    clip: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _params(self) -> Distribution:
        need = {
            "lognormal": ("median", "sigma"), "pareto": ("alpha", "minimum"),
            "uniform": ("minimum", "maximum"), "beta": ("alpha", "beta"),
            "normal": ("mean", "sigma"), "fixed": ("value",),
        }[self.dist]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{self.dist} needs {', '.join(missing)}")
        if self.dist == "uniform" and self.maximum is not None and self.minimum is not None:
            if self.maximum < self.minimum:
                raise ValueError("maximum must be >= minimum")
        if self.dist == "pareto" and self.minimum is not None and self.minimum <= 0:
            # the pareto scale: at or below 0 every value would be 0 or negative
            raise ValueError("pareto needs minimum > 0")
        if self.clip is not None and self.clip[0] > self.clip[1]:
            raise ValueError("clip must be (low, high) with low <= high")
        return self


def _d(**kw: object) -> Distribution:
    return Distribution.model_validate(kw)


class PortfolioGenerate(Model):
    accounts: int = Field(1000, ge=1, le=50_000_000)
    wallet: Distribution = _d(dist="lognormal", median=120_000, sigma=1.3)
    share: Distribution = _d(dist="beta", alpha=2.0, beta=3.0)
    margin: Distribution = _d(dist="normal", mean=0.30, sigma=0.06, clip=(0.05, 0.6))
    loyalty: Distribution = _d(dist="beta", alpha=3.0, beta=2.5)
    tenure_months: Distribution = _d(dist="uniform", minimum=0, maximum=120)
    purchase_frequency: Distribution = _d(dist="lognormal", median=2.0, sigma=0.6)
    purchase_regularity: Distribution = _d(dist="beta", alpha=4.0, beta=2.0)
    growth_potential: Distribution = _d(dist="normal", mean=0.03, sigma=0.05, clip=(-0.2, 0.4))
    influence: Distribution = _d(dist="beta", alpha=1.2, beta=5.0)
    feedback: Distribution = _d(dist="beta", alpha=2.0, beta=3.0)
    payment_risk: Distribution = _d(dist="beta", alpha=1.5, beta=8.0)
    strategic_fit: Distribution = _d(dist="beta", alpha=2.0, beta=2.0)
    price_sensitivity: Distribution = _d(dist="beta", alpha=2.0, beta=2.0)
    segments: dict[Name, Prob] = Field(
        default_factory=lambda: {"enterprise": 0.2, "midmarket": 0.5, "small": 0.3}
    )
    industries: dict[Name, Prob] = Field(
        default_factory=lambda: {"manufacturing": 0.35, "retail": 0.25, "telecom": 0.15,
                                 "utilities": 0.1, "services": 0.15}
    )
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX,
                             description="portfolio seed (default: scenario seed)")

    @model_validator(mode="after")
    def _mixes(self) -> PortfolioGenerate:
        for name in ("segments", "industries"):
            mix = getattr(self, name)
            total = sum(mix.values())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"{name} shares sum to {total:g}, expected 1")
        return self


class PortfolioImport(Model):
    path: str = Field(description="CSV file, relative to the scenario")
    columns: dict[str, str] = Field(
        default_factory=dict, description="kamsim field -> column name in the file"
    )
    defaults: PortfolioGenerate = PortfolioGenerate(accounts=1)


class Portfolio(Model):
    generate: PortfolioGenerate | None = None
    import_: PortfolioImport | None = Field(None, alias="import")
    max_new_share: NonNeg = Field(
        0.5, description="room for new accounts, as a share of the starting portfolio"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one(self) -> Portfolio:
        if (self.generate is None) == (self.import_ is None):
            raise ValueError("give exactly one of `generate` or `import`")
        return self


class Strategy(Model):
    name: Literal["equal", "tiered", "value_based", "cultivate", "custom"]
    level: Name | None = Field(None, description="equal: the service level everyone gets")
    priority: ExprText | None = Field(None, description="custom: priority expression")
    extra_effort: NonNeg = Field(0.5, description="cultivate: extra share of visits")
    by: Literal["clv", "score"] = Field("clv", description="value_based: what ranks accounts")

    @model_validator(mode="after")
    def _params(self) -> Strategy:
        if self.name == "custom" and not self.priority:
            raise ValueError("strategy `custom` needs a `priority` expression")
        # a setting of another strategy would be silently ignored (`name: tiered` with a
        # `level` runs tiered): refused at its key, as a lesson refuses a setting it ignores.
        # A null level or priority is left out (a lesson's variant clears one that way).
        owners = {"level": "equal", "priority": "custom", "extra_effort": "cultivate",
                  "by": "value_based"}
        raise_placed([
            PlacedError((key,), f"`{key}` is a setting of the {owner} strategy, which this "
                        f"scenario does not run (strategy {self.name!r} would ignore it)",
                        "leave it out" + (" or null" if key in ("level", "priority") else ""),
                        key=True)
            for key, owner in owners.items()
            if owner != self.name and key in self.model_fields_set
            and getattr(self, key) is not None])
        return self


class SupportTeam(Model):
    agents: int = Field(default=4, ge=0)
    hours_per_month: NonNeg = 140.0
    service_time: Literal["exponential", "lognormal", "fixed"] = "exponential"
    mean_hours: Pos = Field(default=6.0, description="mean hours of work per complaint")
    sigma: NonNeg = Field(default=0.5, description="lognormal shape")
    event_level_max: int = Field(
        default=2_000, ge=0, description="complaints per period above which the queue is aggregated"
    )


class Capacity(Model):
    account_managers: NonNeg = 10
    am_hours_per_month: NonNeg = Field(default=100.0, description="client-facing hours each")
    executives: NonNeg = 2
    exec_hours_per_month: NonNeg = 16.0
    specialists: NonNeg = 2
    specialist_hours_per_month: NonNeg = 100.0
    budget_per_year: NonNeg | None = Field(
        default=None, description="money for discounts, VIP and joint development (none = unlimited)"
    )
    support: SupportTeam = SupportTeam()


class Market(Model):
    """Behavioural parameters; each is documented in docs/model.md with its source."""

    wallet_growth_per_year: float = 0.02
    # (0.10 a year is the 0.03 per square-root month the engine applied before, docs/model.md)
    wallet_volatility: NonNeg = Field(
        default=0.10, description="yearly: standard deviation of a wallet's log change in a year")
    complaint_rate_per_month: NonNeg = 0.08
    offer_rate_per_year: NonNeg = 0.6
    price_gap: Prob = Field(default=0.08, description="competitor's typical price advantage")
    unfair_offer_share: Prob = 0.15
    strategy_change_per_year: Prob = 0.02
    consolidation_per_year: Prob = 0.03
    failure_per_year: Prob = 0.01
    default_per_year: Prob = 0.02
    loss_given_default: Prob = 0.6
    base_churn_per_year: Prob = Field(
        default=0.04, description="trust-driven leaving: yearly hazard 4 x this x (1 - trust)^2, so this "
        "at trust 0.5; with churn_effects false, the constant yearly hazard")
    trust_speed: Prob = Field(default=0.15, description="monthly speed of trust toward its target")
    share_speed: Prob = Field(default=0.08, description="monthly speed of share toward its target")
    complaint_penalty: Prob = 0.12
    complaint_recovery: Prob = 0.02
    word_of_mouth: Prob = Field(default=0.05, description="strength of leaders' influence on followers")
    negative_weight: NonNeg = Field(default=2.0, description="anger spreads this many times further")
    cold_acquisition_per_year: NonNeg = Field(default=0.0, description="new accounts per year, share")
    acquisition_cost: NonNeg = Field(default=25_000, description="cost of winning a new account cold")
    referral_cost_ratio: Prob = Field(default=0.2, description="a referral costs this share of cold")
    newcomer_price_focus: Prob = 0.15
    orphaned_trust_hit: Prob = Field(
        0.15, description="trust lost at once when a departure leaves no covered thread [003]")
    churn_effects: bool = Field(default=True, description="false: only base churn (degenerate tests)")


#: the shock kinds that read ``capacity_multiplier`` (the account managers' hours, the budget)
CAPACITY_SHOCKS = ("am_attrition", "budget_cut")


class Shock(Model):
    """An event on the timeline; docs/model.md ("Shocks") says what each key and kind does."""

    at_month: int = Field(ge=0)
    until_month: int | None = Field(None, ge=0)
    kind: Literal["competitor_entry", "recession", "am_attrition", "price_war", "budget_cut"]
    offer_rate_multiplier: Pos = 1.0
    price_gap: Prob | None = None
    wallet_multiplier: Pos = 1.0
    capacity_multiplier: NonNeg = 1.0
    label: str = ""

    @model_validator(mode="after")
    def _used(self) -> Shock:
        # a key the shock would silently ignore is refused: the user meant it to do something
        errors: list[PlacedError] = []
        if self.until_month is not None and self.until_month <= self.at_month:
            errors.append(PlacedError(
                ("until_month",), f"until_month {self.until_month} is not after at_month "
                f"{self.at_month}, so the shock would never end",
                f"a month after {self.at_month}, or no until_month for a shock to the end"))
        if self.capacity_multiplier != 1.0 and self.kind not in CAPACITY_SHOCKS:
            errors.append(PlacedError(
                ("capacity_multiplier",), f"a {self.kind} shock does not use "
                "capacity_multiplier", "leave it out: only am_attrition and budget_cut use it"))
        raise_placed(errors)
        return self


class RuleRefs(Model):
    tiering: str
    service: str
    stages: str
    stakeholders: str


class Scenario(Model):
    kamsim: Literal[1] = 1
    kind: Literal["scenario"]
    name: Name
    description: str = ""
    rules: RuleRefs
    portfolio: Portfolio
    strategy: Strategy
    capacity: Capacity = Capacity()
    market: Market = Market()
    shocks: list[Shock] = Field(default_factory=list)
    horizon_months: int = Field(60, ge=1, le=600)
    period: Literal["month", "week"] = "month"
    replications: int = Field(20, ge=1, le=100_000)
    seed: int = Field(20261123, ge=0, le=SEED_MAX, description=(
        "the one seed: it builds the portfolio and the decision units and seeds the "
        "replications (`--seed N` is `seed: N`)"))
    discount_rate: float = Field(0.10, ge=0.0, le=1.0, description="yearly, for lifetime value")
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    contacts: str | None = Field(
        None, description="CRM contacts export (CSV) whose maps override the templates")
    event_log: bool = Field(True, description="keep the per-account event log")

    @model_validator(mode="after")
    def _budget_to_cut(self) -> Scenario:
        raise_placed([PlacedError(
            ("shocks", i, "kind"), "a budget_cut shock needs a budget to cut, and "
            "capacity.budget_per_year is none (unlimited)",
            "a capacity.budget_per_year, or another kind")
            for i, s in enumerate(self.shocks)
            if s.kind == "budget_cut" and self.capacity.budget_per_year is None])
        return self

    def time_grid(self) -> tuple[float, int]:
        """(dt, periods): the length of a period in months (1, or 12/52 for weeks) and how
        many periods the horizon takes; period k starts at month k·dt (docs/model.md, Time).
        The one definition the engine and the tools that name months share."""
        import math

        dt = 1.0 if self.period == "month" else 12.0 / 52.0
        return dt, int(math.ceil(self.horizon_months / dt - 1e-9))


# ---------------------------------------------------------------- helpers


class PlacedError(ValueError):
    """A problem at a place inside the model (``path``, relative to it): reported there, not
    at the model as a whole. ``key`` locates the key rather than its value."""

    def __init__(self, path: tuple[str | int, ...], message: str,
                 expected: str | None = None, key: bool = False):
        self.path = path
        self.key = key
        self.expected = expected
        super().__init__(message)


class RefError(PlacedError):
    """A reference to a name that does not exist; carries the path relative to the model."""

    def __init__(self, path: tuple[str | int, ...], value: str, known: list[str], key: bool):
        import difflib

        near = difflib.get_close_matches(value, known, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        super().__init__(path, f"unknown name {value!r} ({hint}expected one of: "
                         f"{', '.join(known)})", key=key)


class RefErrors(ValueError):
    """Several :class:`PlacedError` found by one check: each is reported at its own place."""

    def __init__(self, errors: list[PlacedError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def raise_placed(errors: Sequence[PlacedError]) -> None:
    """Raise the problems a model's own check found (none: nothing), each to be reported at
    its place."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise RefErrors(list(errors))


def _names(value: Any) -> list[str] | None:
    """The names a list or a mapping's keys give, or None if ``value`` is neither."""
    if isinstance(value, dict):
        return [k for k in value if isinstance(k, str)]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return None


# The name checks below read plain data (a model's dump or the raw file), so the loader can
# run them on a file whose schema check failed elsewhere and still report every bad name.
# Parts of the wrong shape are skipped: the schema check reports those.


def tier_refs(data: Any) -> list[RefError]:
    """Every tier named by the decision table that is not in ``tiers``."""
    known = _names(data.get("tiers")) if isinstance(data, dict) else None
    table = data.get("table") if isinstance(data, dict) else None
    if known is None or not isinstance(table, dict):
        return []
    out: list[RefError] = []
    rows = table.get("rows")
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        tier = row.get("tier") if isinstance(row, dict) else None
        if isinstance(tier, str) and tier not in known:
            out.append(RefError(("table", "rows", i, "tier"), tier, known, key=False))
    default = table.get("default")
    if isinstance(default, str) and default not in known:
        out.append(RefError(("table", "default"), default, known, key=False))
    return out


def role_refs(data: Any) -> list[RefError]:
    """Every role named by a unit template or an edge that is not in ``roles``."""
    known = _names(data.get("roles")) if isinstance(data, dict) else None
    if known is None or not isinstance(data.get("roles"), dict):
        return []
    out: list[RefError] = []
    units = data.get("units")
    for seg, unit in (units.items() if isinstance(units, dict) else ()):
        roles = unit.get("roles") if isinstance(unit, dict) else None
        for role in (roles if isinstance(roles, dict) else ()):
            if isinstance(role, str) and role not in known:
                out.append(RefError(("units", seg, "roles", role), role, known, key=True))
    edges = data.get("edges")
    for i, e in enumerate(edges if isinstance(edges, list) else []):
        for end in ("source", "target"):
            name = e.get(end) if isinstance(e, dict) else None
            if isinstance(name, str) and name not in known:
                out.append(RefError(("edges", i, end), name, known, key=False))
    return out
