"""Typed, validated models of the rule files and the scenario (pydantic v2).

Every model forbids unknown keys and is frozen: once a file has been validated, the rest of
kamsim passes these objects around and never sees raw dictionaries. Expressions are kept as
text here; :mod:`kamsim.spec.load` checks them against the account fields and reports bad
names at their column. Defaults are documented in ``docs/model.md`` with their source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from kamsim.errors import did_you_mean

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

    def inside(self, prefix: tuple[str | int, ...]) -> PlacedError:
        """This problem of an object found at ``prefix`` in the one it is reported in."""
        return PlacedError((*prefix, *self.path), str(self), self.expected, self.key)


class RefError(PlacedError):
    """A reference to a name that does not exist; carries the path relative to the model."""

    def __init__(self, path: tuple[str | int, ...], value: str, known: list[str], key: bool):
        hint = did_you_mean(value, known)
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


# ---------------------------------------------------------------- whole-object checks
#
# The checks a model makes of its keys together (a repeated name, a mix that does not sum to
# 1, a reference to a name the file lacks) read plain data, never the model: the model's own
# validator runs them on its dump, and the loader runs them on the raw file when a schema
# check failed elsewhere (pydantic skips a model's validator once any field inside it fails),
# so every such problem is reported in the same round, at its own key (object_checks, below
# the models). Parts of the wrong shape are skipped: the schema check reports those. Paths
# are relative to the object checked.


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _repeats(items: Any, what: str, path: Callable[[int], tuple[str | int, ...]],
             name: Callable[[Any], Any] = lambda v: v) -> list[PlacedError]:
    """A problem at every entry of the list ``items`` whose name repeats an earlier one's."""
    out: list[PlacedError] = []
    first: dict[str, int] = {}
    for i, item in enumerate(items if isinstance(items, list) else []):
        value = name(item)
        if not isinstance(value, str):
            continue
        if value in first:
            out.append(PlacedError(path(i), f"{what} {value!r} repeats (first at entry "
                                   f"{first[value]})", f"each {what} once"))
        else:
            first[value] = i
    return out


def _sums_to_one(data: dict[str, Any], key: str, what: str) -> list[PlacedError]:
    """A problem at ``data[key]`` if it is a mapping of numbers that does not sum to 1."""
    mix = data.get(key)
    if not isinstance(mix, dict) or not mix or not all(_number(v) for v in mix.values()):
        return []
    total = sum(mix.values())
    if abs(total - 1.0) <= 1e-6:
        return []
    return [PlacedError((key,), f"{key} {what} sum to {total:g}", f"{what} summing to 1")]


def tiering_checks(data: Any) -> list[PlacedError]:
    """A tiering file: each tier named once, and every tier the table names is one of them."""
    if not isinstance(data, dict):
        return []
    return [*_repeats(data.get("tiers"), "tier name", lambda i: ("tiers", i)),
            *tier_refs(data)]


#: the uncoupled stage's name when the file does not give one
UNCOUPLED_NAME = "uncoupled"


def stage_checks(data: Any) -> list[PlacedError]:
    """A stages file: each stage named once, and the uncoupled stage's name none of theirs."""
    if not isinstance(data, dict):
        return []
    stages = data.get("stages")
    out = _repeats(stages, "stage name", lambda i: ("stages", i, "name"),
                   lambda s: s.get("name") if isinstance(s, dict) else None)
    # the ladder's ends: nothing is below the first stage or above the last, so a move rule
    # there would be read and silently never applied
    ladder = [s for s in stages if isinstance(s, dict)] if isinstance(stages, list) else []
    if len(ladder) == len(stages or []) and ladder:
        for i, key, where in ((0, "down_when", "first"), (len(ladder) - 1, "up_when", "top")):
            if ladder[i].get(key) is not None:
                out.append(PlacedError(("stages", i, key), f"`{key}` on the {where} stage "
                                       f"{ladder[i].get('name')!r} would never apply: there is "
                                       f"no stage {'below' if key == 'down_when' else 'above'} "
                                       "it", "leave it out" + ("; `uncoupled.when` breaks "
                                       "the relationship down from any stage"
                                       if key == "down_when" else ""), key=True))
    unc = data.get("uncoupled", {})
    name = unc.get("name", UNCOUPLED_NAME) if isinstance(unc, dict) else None
    named = [i for i, s in enumerate(stages if isinstance(stages, list) else [])
             if isinstance(s, dict) and s.get("name") == name]
    if isinstance(name, str) and named:
        if isinstance(unc, dict) and "name" in unc:
            out.append(PlacedError(("uncoupled", "name"), f"uncoupled stage name {name!r} is "
                                   f"also the name of stage {named[0]}",
                                   "a name no stage of the ladder has"))
        else:  # the default name: the stage that took it is the place to change
            out.append(PlacedError(("stages", named[0], "name"), f"stage name {name!r} is the "
                                   "uncoupled stage's (its default name)",
                                   "another name, or an uncoupled.name of its own"))
    return out


def archetype_checks(data: Any) -> list[PlacedError]:
    """A role archetype: its attitude and coverage mixes each sum to 1."""
    if not isinstance(data, dict):
        return []
    # an empty mix drew no one: everyone neutral, or not covered at all, without a word
    empty = [PlacedError((key,), f"{key} is empty: it would draw no one",
                         f"shares that sum to 1, or no `{key}` for the default mix")
             for key in ("attitude", "coverage") if data.get(key) == {}]
    return [*empty, *_sums_to_one(data, "attitude", "probabilities"),
            *_sums_to_one(data, "coverage", "probabilities")]


def _closes_cycle(above: dict[str, list[str]], low: str, high: str) -> list[str] | None:
    """The chain ``high -> ... -> low`` through the reporting lines in ``above`` (each name
    to the ones it reports to) if there is one: a new line ``low -> high`` would close it
    into a cycle, in which everyone is their own boss's boss. None if there is no chain."""
    seen, todo = {high: [high]}, [high]
    while todo:
        node = todo.pop()
        for boss in above.get(node, ()):
            if boss not in seen:
                seen[boss] = [*seen[node], boss]
                todo.append(boss)
    return seen.get(low)


def unit_checks(roles: Sequence[str] | None, account: str, unit: Any) -> list[PlacedError]:
    """An explicit map (one account's ``people`` and ``influences``): every role is one of
    ``roles`` (None: not checked), each person id once, ``reports_to`` and both ends of an
    influence name another person of the same map, each influence's weight within -1..1 and
    each ordered pair once (a second entry would silently replace the first)."""
    if not isinstance(unit, dict):
        return []
    out: list[PlacedError] = []
    people = unit.get("people")
    people = [p if isinstance(p, dict) else {} for p in people] if isinstance(people, list) \
        else []
    for i, p in enumerate(people):
        role = p.get("role")
        if roles is not None and isinstance(role, str) and role not in roles:
            hint = did_you_mean(role, roles)
            out.append(PlacedError(("people", i, "role"), f"unknown role {role!r}",
                                   f"{hint}one of the file's roles: {', '.join(roles)}"))
    out += _repeats(people, "person id", lambda i: ("people", i, "id"), lambda p: p.get("id"))
    ids = [p.get("id") for p in people if isinstance(p.get("id"), str)]

    def nobody(path: tuple[str | int, ...], what: str, name: str, me: Any) -> PlacedError:
        others = sorted(set(ids) - {me})
        hint = did_you_mean(name, others)
        return PlacedError(path, f"{what} {name!r} is no other person of account {account!r}",
                           f"{hint}one of: {', '.join(others)}" if others
                           else "another person of the account")

    above: dict[str, list[str]] = {}  # the sound reporting lines so far
    for i, p in enumerate(people):
        boss, me = p.get("reports_to"), p.get("id")
        if isinstance(boss, str) and (boss not in ids or boss == me):
            out.append(nobody(("people", i, "reports_to"), "reports_to", boss, me))
        elif isinstance(boss, str) and isinstance(me, str):
            chain = _closes_cycle(above, me, boss)
            if chain is not None:
                out.append(PlacedError(("people", i, "reports_to"), f"reports_to {boss!r} "
                                       f"closes a cycle: {' -> '.join([me, *chain])}",
                                       "reporting lines that end at a person who reports to "
                                       "no one"))
            else:
                above.setdefault(me, []).append(boss)
    influences = unit.get("influences")
    first: dict[tuple[str, str], int] = {}
    for i, e in enumerate(influences if isinstance(influences, list | tuple) else []):
        if not isinstance(e, list | tuple) or len(e) != 3:
            continue
        src, dst, weight = e
        bad = False
        for end, name, me in ((0, src, dst), (1, dst, src)):
            if isinstance(name, str) and (name not in ids or (end == 1 and name == me)):
                out.append(nobody(("influences", i, end),
                                  "the influence's " + ("source" if end == 0 else "target"),
                                  name, me))
                bad = True
        pair = (src, dst) if not bad and isinstance(src, str) and isinstance(dst, str) \
            else None
        if pair is not None and pair in first:  # (reported before its weight: the whole
            # entry's problem does not hide a problem inside it)
            out.append(PlacedError(("influences", i), f"influence {src} -> {dst} repeats "
                                   f"(first at entry {first[pair]})", "one entry per ordered "
                                   "pair; a negative weight makes it a conflict"))
        elif pair is not None:
            first[pair] = i
        if _number(weight) and not -1.0 <= weight <= 1.0:
            out.append(PlacedError(("influences", i, 2), f"influence weight {weight:g} is "
                                   "outside -1..1", "a weight from -1 to 1; a negative one is a "
                                   "conflict edge"))
    return out


def stakeholder_checks(data: Any) -> list[PlacedError]:
    """A stakeholders file: its roles named where they are used, a `default` template, and
    every explicit map sound (:func:`unit_checks`, against the roles of the same file)."""
    if not isinstance(data, dict):
        return []
    out: list[PlacedError] = list(role_refs(data))
    units = data.get("units")
    if isinstance(units, dict) and "default" not in units:
        out.append(PlacedError(("units",), "units has no `default` template",
                               "a `default` template, for the segments without their own",
                               key=True))
    roles = _names(data.get("roles")) if isinstance(data.get("roles"), dict) else None
    edges = data.get("edges")
    above: dict[str, list[str]] = {}  # the reporting lines between roles so far
    for i, e in enumerate(edges if isinstance(edges, list) else []):
        if not isinstance(e, dict) or e.get("kind") != "reports_to":
            continue
        low, high = e.get("source"), e.get("target")
        if not isinstance(low, str) or not isinstance(high, str) or low == high:
            continue  # (a role reporting to itself: its people report to its first one)
        chain = _closes_cycle(above, low, high)
        if chain is not None:
            out.append(PlacedError(("edges", i), f"reports_to {low} -> {high} closes a cycle "
                                   f"of roles: {' -> '.join([low, *chain])}",
                                   "reporting lines that end at a role that reports to no one"))
        else:
            above.setdefault(low, []).append(high)
    accounts = data.get("accounts")
    for acc, unit in (accounts.items() if isinstance(accounts, dict) else ()):
        if isinstance(acc, str):
            out += [e.inside(("accounts", acc)) for e in unit_checks(roles, acc, unit)]
    return out


def special_role_checks(data: Any) -> list[PlacedError]:
    """A stakeholders FILE names a role economic_buyer. kamsim finds the decision maker by
    that name only (dm_covered, the eb_uncovered red flag): without it every account's
    economic buyer counts as uncovered, silently, whatever else the file has (a `champion`
    role does not make up for it). The champion role is optional: without it only a mentor
    is a champion, which a rule set may mean. Only the role names are needed, so a problem
    inside a role does not hide this one. (A check of the file, not of the model: rules
    built in Python, such as the tests' odd ones, may leave it out.)"""
    roles = data.get("roles") if isinstance(data, dict) else None
    if not isinstance(roles, dict) or not roles or "economic_buyer" in roles:
        return []
    return [PlacedError(("roles",), "no role is named economic_buyer, the name kamsim knows "
                        "the decision maker by, so every account would count its economic "
                        "buyer as uncovered, with dm_covered false and the eb_uncovered red flag",
                        "the decision maker's role named economic_buyer, and a champion "
                        "role, if any, champion; docs/rules.md, Stakeholder maps", key=True)]


#: the parameters each kind of distribution needs
DIST_PARAMS = {
    "lognormal": ("median", "sigma"), "pareto": ("alpha", "minimum"),
    "uniform": ("minimum", "maximum"), "beta": ("alpha", "beta"),
    "normal": ("mean", "sigma"), "fixed": ("value",),
}


def distribution_checks(data: Any) -> list[PlacedError]:
    """A distribution: the parameters its kind needs, and bounds in order."""
    if not isinstance(data, dict):
        return []
    out: list[PlacedError] = []
    dist = data.get("dist")
    need = DIST_PARAMS.get(dist, ()) if isinstance(dist, str) else ()
    missing = [k for k in need if data.get(k) is None]
    if missing:
        out.append(PlacedError((), f"{dist} needs {', '.join(missing)}",
                               f"{', '.join(need)} for a {dist} distribution"))
    low, high = data.get("minimum"), data.get("maximum")
    if dist == "uniform" and _number(low) and _number(high) and high < low:
        out.append(PlacedError(("maximum",), f"maximum {high:g} is below minimum {low:g}",
                               "maximum >= minimum"))
    if dist == "pareto" and _number(low) and low <= 0:
        # the pareto scale: at or below 0 every value would be 0 or negative
        out.append(PlacedError(("minimum",), "pareto needs minimum > 0", "a number > 0"))
    clip = data.get("clip")
    if isinstance(clip, list | tuple) and len(clip) == 2 and all(_number(c) for c in clip) \
            and clip[0] > clip[1]:
        out.append(PlacedError(("clip",), f"clip [{clip[0]:g}, {clip[1]:g}] has low > high",
                               "(low, high) with low <= high"))
    return out


def mix_checks(data: Any) -> list[PlacedError]:
    """A generated portfolio: its segment and industry shares each sum to 1."""
    if not isinstance(data, dict):
        return []
    return [*_sums_to_one(data, "segments", "shares"),
            *_sums_to_one(data, "industries", "shares")]


def portfolio_checks(data: Any) -> list[PlacedError]:
    """A portfolio: exactly one of ``generate`` or ``import``."""
    if not isinstance(data, dict):
        return []
    given = [k for k in ("generate", "import") if data.get(k) is not None]
    if len(given) == 1:
        return []
    what = "both `generate` and `import`" if given else "neither `generate` nor `import`"
    return [PlacedError((), f"portfolio gives {what}", "exactly one of `generate` or `import`")]


#: the strategy each strategy setting belongs to
STRATEGY_SETTINGS = {"level": "equal", "priority": "custom", "extra_effort": "cultivate",
                     "by": "value_based"}


def strategy_checks(data: Any) -> list[PlacedError]:
    """A strategy (the keys given, not the defaults): `custom` has its priority expression,
    and no setting of another strategy is given, since it would be silently ignored
    (`name: tiered` with a `level` runs tiered; refused at its key, as a lesson refuses a
    setting it ignores). A null level or priority is left out (a lesson's variant clears one
    that way)."""
    if not isinstance(data, dict):
        return []
    out: list[PlacedError] = []
    name = data.get("name")
    if name == "custom" and not data.get("priority"):
        out.append(PlacedError((), "strategy `custom` needs a `priority` expression",
                               "a priority: expression"))
    if isinstance(name, str):
        out += [PlacedError((key,), f"`{key}` is a setting of the {owner} strategy, which "
                            f"this scenario does not run (strategy {name!r} would ignore it)",
                            "leave it out" + (" or null" if key in ("level", "priority")
                                              else ""), key=True)
                for key, owner in STRATEGY_SETTINGS.items()
                if owner != name and data.get(key) is not None]
    return out


#: the shock kinds that read ``capacity_multiplier`` (the account managers' hours, the budget)
CAPACITY_SHOCKS = ("am_attrition", "budget_cut")


def shock_checks(data: Any) -> list[PlacedError]:
    """A shock: it ends after it starts, and uses every key it is given (a key the shock
    would silently ignore is refused: the user meant it to do something)."""
    if not isinstance(data, dict):
        return []
    errors: list[PlacedError] = []
    start, end = data.get("at_month"), data.get("until_month")
    if _number(start) and _number(end) and end <= start:
        errors.append(PlacedError(
            ("until_month",), f"until_month {end} is not after at_month {start}, so the "
            "shock would never end",
            f"a month after {start}, or no until_month for a shock to the end"))
    kind, mult = data.get("kind"), data.get("capacity_multiplier", 1.0)
    if isinstance(kind, str) and _number(mult) and mult != 1.0 and kind not in CAPACITY_SHOCKS:
        errors.append(PlacedError(
            ("capacity_multiplier",), f"a {kind} shock does not use capacity_multiplier",
            "leave it out: only am_attrition and budget_cut use it"))
    return errors


def scenario_checks(data: Any) -> list[PlacedError]:
    """A scenario: a budget_cut shock has a budget to cut."""
    if not isinstance(data, dict):
        return []
    capacity = data.get("capacity", {})
    if not isinstance(capacity, dict) or capacity.get("budget_per_year") is not None:
        return []
    shocks = data.get("shocks")
    return [PlacedError(
        ("shocks", i, "kind"), "a budget_cut shock needs a budget to cut, and "
        "capacity.budget_per_year is none (unlimited)",
        "a capacity.budget_per_year, or another kind")
        for i, s in enumerate(shocks if isinstance(shocks, list) else [])
        if isinstance(s, dict) and s.get("kind") == "budget_cut"]


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
    def _checks(self) -> TieringRules:
        raise_placed(tiering_checks(self.model_dump()))
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
    name: Name = UNCOUPLED_NAME
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
    def _checks(self) -> StageRules:
        raise_placed(stage_checks(self.model_dump()))
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
    def _checks(self) -> RoleArchetype:
        raise_placed(archetype_checks(self.model_dump()))
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
    def _checks(self) -> StakeholderRules:
        raise_placed(stakeholder_checks(self.model_dump()))
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
    def _checks(self) -> Distribution:
        raise_placed(distribution_checks(self.model_dump()))
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
    def _checks(self) -> PortfolioGenerate:
        raise_placed(mix_checks(self.model_dump()))
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
    def _checks(self) -> Portfolio:
        raise_placed(portfolio_checks(self.model_dump(by_alias=True)))
        return self


class Strategy(Model):
    name: Literal["equal", "tiered", "value_based", "cultivate", "custom"]
    level: Name | None = Field(None, description="equal: the service level everyone gets")
    priority: ExprText | None = Field(None, description="custom: priority expression")
    extra_effort: NonNeg = Field(0.5, description="cultivate: extra share of visits")
    by: Literal["clv", "score"] = Field("clv", description="value_based: what ranks accounts")

    @model_validator(mode="after")
    def _checks(self) -> Strategy:
        # the keys given (a default of another strategy's setting is not the user's)
        raise_placed(strategy_checks(self.model_dump(include=self.model_fields_set
                                                     | {"name"})))
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
    def _checks(self) -> Shock:
        raise_placed(shock_checks(self.model_dump()))
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
    def _checks(self) -> Scenario:
        raise_placed(scenario_checks(self.model_dump(by_alias=True)))
        return self

    def time_grid(self) -> tuple[float, int]:
        """(dt, periods): the length of a period in months (1, or 12/52 for weeks) and how
        many periods the horizon takes; period k starts at month k·dt (docs/model.md, Time).
        The one definition the engine and the tools that name months share."""
        import math

        dt = 1.0 if self.period == "month" else 12.0 / 52.0
        return dt, int(math.ceil(self.horizon_months / dt - 1e-9))


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


#: each model's whole-object check (the one its validator runs on its own dump)
_CHECKS: dict[type[BaseModel], Callable[[Any], list[PlacedError]]] = {
    TieringRules: tiering_checks, StageRules: stage_checks, RoleArchetype: archetype_checks,
    StakeholderRules: stakeholder_checks, Distribution: distribution_checks,
    PortfolioGenerate: mix_checks, Portfolio: portfolio_checks, Strategy: strategy_checks,
    Shock: shock_checks, Scenario: scenario_checks,
}


def _models_in(annotation: Any, value: Any) -> list[tuple[tuple[str | int, ...], Any, type]]:
    """The (path, value, model) of every model an ``annotation``'s ``value`` holds: the value
    itself, the entries of a list or the values of a mapping; parts of another shape are
    skipped (the schema check reports them)."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [((), value, annotation)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and isinstance(value, list) and args:
        return [((i, *p), v, t) for i, item in enumerate(value)
                for p, v, t in _models_in(args[0], item)]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return [((k, *p), v, t) for k, item in value.items()
                for p, v, t in _models_in(args[1], item)]
    if origin is typing.Annotated and args:
        return _models_in(args[0], value)
    if args and origin is not tuple:  # X | None: the model among the choices
        found = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return _models_in(found[0], value) if found and isinstance(value, dict) else []
    return []


def register_checks(checks: dict[type[BaseModel], Callable[[Any], list[PlacedError]]]
                    ) -> None:
    """Add the whole-object checks of models defined elsewhere (a lesson's)."""
    _CHECKS.update(checks)


def object_checks(model: type[BaseModel], data: Any) -> list[PlacedError]:
    """Every whole-object check of ``model`` and of the models inside it, on plain data (a
    file whose schema check failed: pydantic ran only the checks of the objects whose every
    field was valid). Paths are relative to ``data``, parents first."""
    if not isinstance(data, dict):
        return []
    check = _CHECKS.get(model)
    out = list(check(data)) if check is not None else []
    for name, f in model.model_fields.items():
        key = f.alias or name
        if key in data:
            for path, value, inner in _models_in(f.annotation, data[key]):
                out += [e.inside((key, *path)) for e in object_checks(inner, value)]
    return out
