"""Lessons for trainers: a question, a scenario run in two or more variants on the same random
futures, the figure that answers the question, and the story of one typical account.

A lesson is a sidecar file ``<name>.lesson.yaml`` next to its scenario (the scenario stays a
normal scenario that ``kamsim validate`` and ``kamsim run`` accept)::

    kind: lesson
    name: champion_leaves
    title: When the champion leaves
    question: ...
    scenario: champion_leaves.yaml
    focus: A001                      # the account whose story is told (main variant)
    main: single_threaded            # the variant the story and the page come from
    variants:                        # label -> scenario overrides (as --set KEY=VALUE)
      single_threaded: []
      multi_threaded: ["rules.stakeholders=maps/multi_threaded.yaml"]
    figures:                         # what the answer table shows (measures: PARAMS)
      - {name: kept, measure: retained_after_departure, role: champion}
    checks:                          # what the answer claims, checked on paired replications
      - {figure: kept, higher: multi_threaded, lower: single_threaded}
    answer: Multi-threaded accounts keep ...

Trainers write lessons without touching Python (the format: docs/rules.md, "Lesson files");
:func:`list_lessons` validates them all (the names the lesson uses, the parameters of each
measure, every variant's scenario, the focus account in the main variant, the variants'
shared replications and seed) and reports every problem at ``path:line:col``, all at once,
before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from kamsim.errors import InputError, Problem, RunError, did_you_mean
from kamsim.spec.models import register_checks

if TYPE_CHECKING:
    from kamsim.spec.models import PlacedError

__all__ = ["Lesson", "Figure", "Check", "LessonRun", "CheckResult", "MEASURES", "PARAMS",
           "BOUNDS", "default_lessons_dir", "lessons_dir", "lesson_files", "load_lesson",
           "list_lessons", "find_lesson", "run_lesson", "measure"]

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: the parameters each measure takes: (required, optional). A figure that gives another one
#: is refused at it: the measure would ignore it, and the table would show the figure as if
#: it were narrowed (`tier: key` on defection_rate showed the numbers of all accounts)
PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "retention": ((), ("tier",)),
    "profit": ((), ("tier",)),
    "mean_trust": ((), ("tier",)),
    "churn_cause": (("cause",), ()),
    "late_complaints": ((), ()),
    "retained_after_departure": (("role",), ()),
    "trust_after_departure": (("role",), ()),
    "defection_rate": ((), ("stage",)),
}
_PARAM_KEYS = ("tier", "role", "cause", "stage")


class Figure(_Model):
    """One figure of the answer table, computed per replication by a named measure."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="label used by checks")
    measure: Literal["retention", "profit", "mean_trust", "churn_cause", "late_complaints",
                     "retained_after_departure", "trust_after_departure", "defection_rate"]
    label: str = ""
    tier: str | None = Field(None, description="retention, profit, mean_trust: one tier")
    role: str | None = Field(None, description="after_departure measures: whose departure")
    cause: str | None = Field(None, description="churn_cause: one of the seven causes")
    stage: str | None = Field(None, description="defection_rate: accounts starting here")

    @model_validator(mode="after")
    def _params(self) -> Figure:
        from kamsim.spec.models import raise_placed

        raise_placed(_figure_problems(self.model_dump()))
        return self


class Check(_Model):
    """A claim of the lesson: ``higher`` scores above ``lower``. With ``figure``, higher and
    lower are variants (compared on that figure); with ``variant``, they are figures
    (compared within that variant). Holds when the paired interval is above 0; cannot be
    told when fewer than 2 replications have the figure (a lesson runs with at least 2)."""

    figure: str | None = None
    variant: str | None = None
    higher: str
    lower: str

    @model_validator(mode="after")
    def _one(self) -> Check:
        from kamsim.spec.models import raise_placed

        raise_placed(_check_kind(self.model_dump(), ()))
        return self


class Lesson(_Model):
    """A validated lesson file."""

    kind: Literal["lesson"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    question: str = Field(min_length=1)
    scenario: str = Field(description="scenario file, relative to the lesson file")
    focus: str = Field(min_length=1, description="account whose story is told")
    main: str
    variants: dict[str, list[str]] = Field(min_length=2)
    figures: list[Figure] = Field(min_length=1)
    checks: list[Check] = Field(min_length=1)
    answer: str = Field(min_length=1, description="the answer as the model finds it")
    _path: str = PrivateAttr("")  # the lesson file, set by load_lesson
    # each variant's scenario, as load_lesson loaded it to check it (see specs())
    _specs: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def path(self) -> str:
        return self._path

    @model_validator(mode="after")
    def _refs(self) -> Lesson:
        # each problem carries the path of the bad name, so it is reported at the name itself
        # (a plain ValueError here is located at the top of the file)
        from kamsim.spec.models import raise_placed

        raise_placed(_lesson_problems(self.model_dump()))
        return self

    def scenario_path(self) -> Path:
        return Path(self._path).parent / self.scenario

    def specs(self) -> dict[str, Any]:
        """Each variant's ScenarioSpec, in the file's order. load_lesson loads every variant
        to check it, so a run, its trace and its page take those rather than reading the
        scenario and its rule files again; a lesson made otherwise loads them here, once."""
        if set(self._specs) != set(self.variants):
            from kamsim.spec.load import load_scenario, reading_once

            with reading_once():
                self._specs = {label: load_scenario(self.scenario_path(), sets)
                               for label, sets in self.variants.items()}
        return {label: self._specs[label] for label in self.variants}

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)


# The checks below read plain data (a model's dump or the raw file), so load_lesson can run
# them on a file whose schema check failed elsewhere and still report every problem at once
# (pydantic skips a model's own checks when one of its fields fails). Parts of the wrong
# shape are skipped: the schema check reports those.


def _figure_problems(fig: Any) -> list[PlacedError]:
    """A figure gives the parameters its measure needs, and no other (paths from the
    figure)."""
    from kamsim.spec.models import CHURN_CAUSES, PlacedError, RefError

    if not isinstance(fig, dict) or fig.get("measure") not in PARAMS:
        return []
    m = fig["measure"]
    required, optional = PARAMS[m]
    takes = (f"it takes: {', '.join(required + optional)}" if required + optional
             else "it takes no parameter")
    out: list[PlacedError] = []
    for key in _PARAM_KEYS:
        if fig.get(key) is not None and key not in required + optional:
            out.append(PlacedError((key,), f"measure {m} takes no `{key}`", takes, key=True))
    needs = {"cause": f"one of: {', '.join(CHURN_CAUSES)}",
             "role": "whose departure: a role of the stakeholder map"}
    for key in required:
        if fig.get(key) is None:
            out.append(PlacedError(("measure",), f"measure {m} needs `{key}`", needs[key]))
    cause = fig.get("cause")
    if "cause" in required and isinstance(cause, str) and cause not in CHURN_CAUSES:
        out.append(RefError(("cause",), cause, list(CHURN_CAUSES), key=False))
    return out


def _check_kind(check: Any, at: tuple[str | int, ...]) -> list[PlacedError]:
    """A check names exactly one of `figure` and `variant` (``at``: the check's path)."""
    from kamsim.spec.models import PlacedError

    if not isinstance(check, dict):
        return []
    if (check.get("figure") is None) == (check.get("variant") is None):
        return [PlacedError(at, "give exactly one of `figure` (compare variants) or "
                                "`variant` (compare figures)")]
    return []


def _lesson_problems(data: Any) -> list[PlacedError]:
    """Names within the file: figure names are unique (checks and the table find a figure
    by its name), and `main` and the checks name variants and figures that exist."""
    from kamsim.spec.models import PlacedError, RefError

    if not isinstance(data, dict):
        return []
    out: list[PlacedError] = []
    figures = data.get("figures")
    names: list[str] | None = [] if isinstance(figures, list) else None
    for i, f in enumerate(figures if isinstance(figures, list) else []):
        name = f.get("name") if isinstance(f, dict) else None
        if not isinstance(name, str) or names is None:
            continue
        if name in names:
            out.append(PlacedError(("figures", i, "name"), f"figure name {name!r} is used "
                                   "twice", "a name of its own for each figure: checks and "
                                   "the table find a figure by its name"))
        names.append(name)
    raw = data.get("variants")
    variants = [k for k in raw if isinstance(k, str)] if isinstance(raw, dict) else None
    main = data.get("main")
    if variants is not None and isinstance(main, str) and main not in variants:
        out.append(RefError(("main",), main, variants, key=False))
    checks = data.get("checks")
    for i, c in enumerate(checks if isinstance(checks, list) else []):
        kind = _check_kind(c, ("checks", i))
        if kind or not isinstance(c, dict):
            out += kind
            continue
        pairs = ([("figure", names), ("higher", variants), ("lower", variants)]
                 if c.get("figure") is not None else
                 [("variant", variants), ("higher", names), ("lower", names)])
        for key, known in pairs:
            value = c.get(key)
            if known is not None and isinstance(value, str) and value not in known:
                out.append(RefError(("checks", i, key), value, known, key=False))
    return out


# the lesson's whole-object checks join the others: when a lesson's schema check fails,
# kamsim.spec.load runs them on the raw data like those of every other kind of file
register_checks({Lesson: _lesson_problems, Figure: _figure_problems})


# ---------------------------------------------------------------- files


def default_lessons_dir() -> Path:
    """``$KAMSIM_LESSONS``, else ``./scenarios/lessons`` if it exists (a checkout, or the
    folder ``kamsim examples`` made), else the lessons shipped with kamsim
    (:func:`kamsim.examples.bundled`: the wheel's copy, or the checkout's)."""
    env = os.environ.get("KAMSIM_LESSONS")
    if env:
        return Path(env)
    here = Path("scenarios/lessons")
    if here.is_dir():
        return here
    from kamsim.examples import bundled

    return bundled("scenarios") / "lessons"


def lessons_dir(folder: str | Path | None = None) -> Path:
    """``folder`` (default :func:`default_lessons_dir`), which must be a folder: a mistyped
    ``--dir`` or ``$KAMSIM_LESSONS`` is an error, not an empty list of lessons."""
    path = Path(folder) if folder else default_lessons_dir()
    if not path.is_dir():
        whence = "" if folder or not os.environ.get("KAMSIM_LESSONS") else " ($KAMSIM_LESSONS)"
        what = "not a folder" if path.exists() else "no such folder"
        raise RunError(f"lesson folder {path}{whence}: {what}")
    return path


def lesson_files(folder: str | Path | None = None) -> list[Path]:
    """The ``*.lesson.yaml`` files of ``folder`` (default :func:`default_lessons_dir`),
    sorted; RunError if the folder does not exist."""
    return sorted(lessons_dir(folder).glob("*.lesson.yaml"))


def load_lesson(path: str | Path) -> Lesson:
    """Load and validate one lesson file, including that its scenario loads with every
    variant's overrides; raise :class:`InputError` with all problems, located.

    As for scenarios, a problem does not hide the others: the names the file refers to and
    the scenario's variants are checked on the raw data wherever they can be read, even when
    the schema check failed elsewhere in the file."""
    from dataclasses import replace

    from kamsim.spec.load import ALL_KINDS, touches, validate_places
    from kamsim.spec.yamlpos import load_yaml

    doc = load_yaml(path, display=str(path), keep_going=True)
    data = doc.data
    if not isinstance(data, dict):
        raise InputError([*doc.problems, Problem(
            doc.locate(()), "the file must be a mapping of keys to values",
            "a lesson: kind: lesson, name, title, ...")])
    problems: list[Problem] = list(doc.problems)  # (a duplicate key: reported with the rest)
    kind = data.get("kind")
    if "kind" not in data:
        problems.append(Problem(doc.locate(()), "missing key 'kind'", "kind: lesson"))
    elif isinstance(kind, str) and kind in ALL_KINDS:  # another kind of file: checking it as a lesson would be noise
        raise InputError([*doc.problems, Problem(doc.locate(("kind",)),
                                                 f"this is a {kind!r} file",
                                                 "a lesson file (kind: lesson)")])
    elif kind != "lesson":  # a typo: the rest is still checked as a lesson
        problems.append(Problem(doc.locate(("kind",)), "kind is empty" if kind is None
                                else f"unknown file kind {kind!r}", "kind: lesson"))
    # the kind is reported above: the schema check sees a lesson
    model, probs, bad = validate_places(replace(doc, data={**data, "kind": "lesson"}), Lesson)
    problems += probs
    def text(key: str) -> str | None:
        """The raw text at ``key`` (None if absent or with a problem of its own)."""
        value = data.get(key)
        return value if isinstance(value, str) and not touches((key,), bad) else None

    name = text("name")
    expected = Path(path).name.removesuffix(".lesson.yaml")
    if name is not None and name != expected:
        problems.append(Problem(doc.locate(("name",)), f"name {name!r} differs from "
                                f"the file name", f"name: {expected}"))
    probs, specs = _check_variants(doc, Path(path), text("scenario"), text("focus"),
                                   text("main"), bad)
    problems += probs
    if problems or model is None:
        raise InputError(problems)
    assert isinstance(model, Lesson)
    model._path = str(path)
    model._specs = specs
    return model


def _check_variants(doc: Any, path: Path, scenario: str | None, focus: str | None,
                    main: str | None, bad: set[tuple[Any, ...]]
                    ) -> tuple[list[Problem], dict[str, Any]]:
    """The scenario loads with each variant's overrides, the names the figures use exist in
    it, the focus account is in the main variant, and the variants are paired. Returns the
    problems and the variants' ScenarioSpecs (those that loaded): the variants are one
    scenario with other overrides, so its files are read once for all of them."""
    from kamsim.spec.load import load_scenario, reading_once, touches

    if scenario is None:
        return [], {}
    target = path.parent / scenario
    if not target.is_file():
        return [Problem(doc.locate(("scenario",)), f"file {scenario!r} does not exist",
                        f"a scenario file relative to {path.parent}")], {}
    raw = doc.data.get("variants")
    problems: list[Problem] = []
    specs: dict[str, Any] = {}
    unknown: dict[tuple[int, str], dict[str, list[str]]] = {}  # figure name -> variant: known
    with reading_once():
        for label, sets in (raw.items() if isinstance(raw, dict) else ()):
            if (not isinstance(sets, list) or not all(isinstance(x, str) for x in sets)
                    or touches(("variants", label), bad)):
                continue
            try:
                spec = load_scenario(target, sets)
            except InputError as exc:
                where = doc.locate(("variants", label))
                problems += [Problem(where, f"variant {label!r}: {p.format()}")
                             for p in exc.problems]
                continue
            specs[label] = spec
            for place, names in _check_names(doc, spec, bad).items():
                unknown.setdefault(place, {})[label] = names
            if label == main and focus is not None:
                problems += _check_focus(doc, focus, label, scenario, spec)
    return (problems + _unknown_names(doc, unknown, list(specs))
            + _check_paired(doc, specs, raw if isinstance(raw, dict) else {})), specs


def _check_names(doc: Any, spec: Any, bad: set[tuple[Any, ...]]
                 ) -> dict[tuple[int, str], list[str]]:
    """The tiers, roles and stages the figures name that the variant's rules lack: (figure,
    key) -> the names the variant has."""
    from kamsim.spec.load import touches

    out = {}
    known = {"tier": list(spec.tiering.tiers), "role": list(spec.stakeholders.roles),
             "stage": [s.name for s in spec.stages.stages]}
    figures = doc.data.get("figures")
    for i, f in enumerate(figures if isinstance(figures, list) else []):
        for key, names in known.items():
            value = f.get(key) if isinstance(f, dict) else None
            if (isinstance(value, str) and value not in names
                    and not touches(("figures", i, key), bad)):
                out[i, key] = names
    return out


def _unknown_names(doc: Any, unknown: dict[tuple[int, str], dict[str, list[str]]],
                   loaded: list[str]) -> list[Problem]:
    """One problem per figure name some variant lacks: the variants usually share the rule
    files, and a line per variant repeated the same problem at the same place. The variants
    are named only when some of them do have the name."""
    out = []
    for (i, key), lacking in unknown.items():
        value = doc.data["figures"][i][key]
        names = next(iter(lacking.values()))
        hint = did_you_mean(value, names)
        where = ("" if len(lacking) == len(loaded) else
                 f" in variant{'s' if len(lacking) > 1 else ''} "
                 f"{', '.join(map(repr, lacking))}")
        out.append(Problem(doc.locate(("figures", i, key)), f"unknown {key} {value!r}{where}",
                           f"{hint}one of: {', '.join(names)}"))
    return out


def _check_focus(doc: Any, focus: str, main: str, scenario: str, spec: Any) -> list[Problem]:
    """The focus account is a starting account of the main variant (whose story is told):
    found now, not after every variant has run."""
    from kamsim.portfolio import starting_ids

    ids = starting_ids(spec)
    if (ids == focus).any():
        return []
    span = f"{ids[0]} to {ids[-1]}, " if ids.size else ""
    return [Problem(doc.locate(("focus",)),
                    f"focus: no account {focus!r} in {scenario!r}",
                    f"an account of variant {main!r}: {span}{ids.size} accounts")]


def _check_paired(doc: Any, specs: dict[str, Any], variants: dict[str, Any]
                  ) -> list[Problem]:
    """Every variant runs the same replications from the same seed: that is what pairs
    replication i of one variant with replication i of the others (the same random future),
    and a check subtracts them replication by replication. A variant's own `replications=`
    made the run fail on arrays of different lengths; its own `seed=` was silently replaced
    by another variant's. Each override that makes a variant differ is reported."""
    out = []
    for key in ("replications", "seed"):
        values = {label: getattr(spec.scenario, key) for label, spec in specs.items()}
        if len(set(values.values())) < 2:
            continue
        shown = ", ".join(f"{label} {v}" for label, v in values.items())
        for label in values:
            for j, item in enumerate(variants.get(label) or []):
                if isinstance(item, str) and item.partition("=")[0].strip() == key:
                    out.append(Problem(
                        doc.locate(("variants", label, j)),
                        f"variant {label!r} sets its own {key}, so the variants differ "
                        f"({shown})", f"the same {key} in every variant, as that pairs their "
                        f"replications: set {key} in the scenario file"))
    return out


def list_lessons(folder: str | Path | None = None) -> list[Lesson]:
    """Every lesson of ``folder``, validated; all problems of all files raised together.
    The rule files the lessons share are read once for all of them (one reading_once)."""
    from kamsim.spec.load import reading_once

    lessons, problems = [], []
    with reading_once():
        for path in lesson_files(folder):
            try:
                lessons.append(load_lesson(path))
            except InputError as exc:
                problems += exc.problems
    if problems:
        raise InputError(problems)
    return lessons


def find_lesson(name: str, folder: str | Path | None = None) -> Lesson:
    """The lesson called ``name`` (RunError listing the known names if there is none)."""
    folder = lessons_dir(folder)
    path = folder / f"{name}.lesson.yaml"
    if not path.is_file():
        known = [p.name.removesuffix(".lesson.yaml") for p in lesson_files(folder)]
        raise RunError(f"no lesson {name!r} in {folder} (known: {', '.join(known) or 'none'})")
    return load_lesson(path)


# ---------------------------------------------------------------- measures


def _col(result: Any, tier: str | None) -> int:
    return 0 if tier is None else 1 + list(result.tiers).index(tier)


def _departed_accounts(result: Any, role: str, roles: list[str]) -> list[set[str]]:
    """Per replication, the accounts where a person in ``role`` left: every departure, not
    only the key-person ones (those depend on our coverage of the person, so variants that
    cover differently would be compared on different accounts)."""
    ev = result.events()
    sel = ev[ev["kind"].isin(("key_person_left", "other_person_left"))
             & (ev["code"] == roles.index(role))]
    return [set(sel.loc[sel["replication"] == o.replication, "account_id"])
            for o in result.outputs]


def _after_departure(result: Any, fig: Figure, roles: list[str], what: str) -> np.ndarray:
    acc = result.accounts()
    out = []
    for o, ids in zip(result.outputs, _departed_accounts(result, fig.role or "", roles),
                      strict=True):
        a = acc[(acc["replication"] == o.replication) & acc["starting"]
                & acc["account_id"].isin(ids)]
        col = a["active"].astype(float) if what == "retained" else a["trust"]
        out.append(float(col.mean()) if len(a) else np.nan)
    return np.array(out)


def _defection_rate(result: Any, fig: Figure) -> np.ndarray:
    acc = result.accounts()
    ev = result.events()
    offers = ev[ev["kind"] == "offer"].merge(
        acc[["replication", "account_id", "initial_stage"]], on=["replication", "account_id"])
    if fig.stage is not None:
        offers = offers[offers["initial_stage"] == fig.stage]
    rate = (offers["detail"] == "defect").groupby(offers["replication"]).mean()
    return np.array([float(rate.get(o.replication, np.nan)) for o in result.outputs])


def measure(result: Any, fig: Figure, roles: list[str]) -> np.ndarray:
    """One value per replication of ``result`` for figure ``fig`` (NaN where undefined,
    e.g. no offers reached that stage in a replication)."""
    from kamsim.spec.models import CHURN_CAUSES

    m = fig.measure
    if m in ("retention", "profit"):
        return result.per_replication()[m][:, _col(result, fig.tier)]
    if m == "mean_trust":
        acc = result.accounts()
        a = acc[acc["starting"] & acc["active"]]
        if fig.tier is not None:
            a = a[a["initial_tier"] == fig.tier]
        t = a.groupby("replication")["trust"].mean()
        return np.array([float(t.get(o.replication, np.nan)) for o in result.outputs])
    if m == "churn_cause":
        i = CHURN_CAUSES.index(fig.cause or "")
        return np.array([o.churn_causes[:, :, i].sum() for o in result.outputs])
    if m == "late_complaints":
        return np.array([o.ts["complaints_unresolved"].sum() / max(1.0, o.ts["complaints"].sum())
                         for o in result.outputs])
    if m == "retained_after_departure":
        return _after_departure(result, fig, roles, "retained")
    if m == "trust_after_departure":
        return _after_departure(result, fig, roles, "trust")
    if m == "defection_rate":
        return _defection_rate(result, fig)
    raise ValueError(f"unknown measure {m!r}")


#: how each measure is shown: percent, number or money
MEASURES: dict[str, str] = {
    "retention": "pct", "profit": "money", "mean_trust": "num", "churn_cause": "num",
    "late_complaints": "pct", "retained_after_departure": "pct",
    "trust_after_departure": "num", "defection_rate": "pct",
}

#: the range each measure cannot leave, where the table's intervals are cut (as
#: :func:`kamsim.stats.mean_ci` does for shares): a few replications' t-interval of a count
#: near 0 reached below it ("accounts lost ... 0.10 (-0.13 to 0.33)"). Profit has none.
BOUNDS: dict[str, tuple[float, float] | None] = {
    "retention": (0.0, 1.0), "profit": None, "mean_trust": (0.0, 1.0),
    "churn_cause": (0.0, float("inf")), "late_complaints": (0.0, 1.0),
    "retained_after_departure": (0.0, 1.0), "trust_after_departure": (0.0, 1.0),
    "defection_rate": (0.0, 1.0),
}


# ---------------------------------------------------------------- running


@dataclass
class CheckResult:
    """A check on paired replications: ``diff`` = higher - lower, its mean and interval."""

    check: Check
    diff: dict[str, float]
    wins: int
    n: int

    @property
    def holds(self) -> bool | None:
        """True if the paired interval lies above 0, False if not, None if it cannot be told:
        fewer than 2 replications had the figure (the others left out as NaN), and one
        difference measures no spread, so neither "holds" nor "not shown" would be honest."""
        if self.n < 2:
            return None
        return bool(self.diff["ci_low"] > 0.0)


@dataclass
class LessonRun:
    """What :func:`run_lesson` returns: every variant's result, the figures per variant and
    replication, the checks, and the focus account's story in the main variant."""

    lesson: Lesson
    results: dict[str, Any]
    values: dict[str, dict[str, np.ndarray]]  # variant -> figure -> per replication
    checks: list[CheckResult]
    trace: Any
    seed: int
    replications: int
    currency: str = "EUR"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def holds(self) -> bool | None:
        """False if a check is not shown, else None if a check cannot be told, else True."""
        verdicts = [c.holds for c in self.checks]
        if False in verdicts:
            return False
        return None if None in verdicts else True

    def table(self) -> dict[str, dict[str, dict[str, float]]]:
        """figure -> variant -> {mean, ci_low, ci_high, n} (NaN replications left out)."""
        from kamsim.stats import mean_ci

        conf = self.results[self.lesson.main].confidence
        out: dict[str, dict[str, dict[str, float]]] = {}
        for f in self.lesson.figures:
            out[f.name] = {}
            for v in self.lesson.variants:
                x = self.values[v][f.name]
                out[f.name][v] = mean_ci(x[~np.isnan(x)], conf, BOUNDS[f.measure])
        return out

    def sentences(self) -> list[str]:
        """Each check as a sentence stating what the model found."""
        return [_check_sentence(self, c) for c in self.checks]


def _fmt(kind: str, x: float, currency: str, signed: bool = False) -> str:
    if np.isnan(x):  # no replication had the figure (no offer reached that stage)
        return "n/a"
    sign = "+" if signed and x > 0 else ""
    if kind == "pct":
        return f"{sign}{100 * x:.1f}{' points' if signed else '%'}"
    if kind == "money":
        return f"{sign}{currency} {x:,.0f}"
    return f"{sign}{x:.2f}"


def format_value(run: LessonRun, figure: str, x: float, signed: bool = False) -> str:
    """A figure's value as text, in the figure's unit."""
    return _fmt(MEASURES[run.lesson.figure(figure).measure], x, run.currency, signed)


def _check_sentence(run: LessonRun, c: CheckResult) -> str:
    ch = c.check
    fig = ch.figure or ch.higher
    label = run.lesson.figure(fig).label or fig.replace("_", " ")
    d = c.diff
    if ch.figure is not None:
        what = f"{label}: higher with {ch.higher} than with {ch.lower}"
    else:
        lo = run.lesson.figure(ch.lower).label or ch.lower
        what = f"with {ch.variant}, {label} is higher than {lo}"
    if c.holds is None:
        # no interval to print (mean_ci gives NaN bounds below 2 values)
        had = (f"difference {format_value(run, fig, d['mean'], True)} in the one replication "
               "that had the figure" if c.n == 1 else "no replication had the figure")
        return (f"{what}: cannot tell, {had} (a check needs at least 2 replications with "
                "the figure)")
    span = (f"{format_value(run, fig, d['mean'], True)} "
            f"(interval {format_value(run, fig, d['ci_low'], True)} to "
            f"{format_value(run, fig, d['ci_high'], True)})")
    verdict = "holds" if c.holds else "is NOT shown by the model here"
    return f"{what}: {verdict}; difference {span}, higher in {c.wins} of {c.n} replications"


def _evaluate(lesson: Lesson, values: dict[str, dict[str, np.ndarray]], conf: float
              ) -> list[CheckResult]:
    from kamsim.stats import mean_ci

    out = []
    for ch in lesson.checks:
        if ch.figure is not None:
            hi, lo = values[ch.higher][ch.figure], values[ch.lower][ch.figure]
        else:
            assert ch.variant is not None
            hi, lo = values[ch.variant][ch.higher], values[ch.variant][ch.lower]
        d = hi - lo
        d = d[~np.isnan(d)]
        out.append(CheckResult(check=ch, diff=mean_ci(d, conf), wins=int((d > 0).sum()),
                               n=int(d.shape[0])))
    return out


def run_lesson(lesson: Lesson | str, *, replications: int | None = None,
               seed: int | None = None, workers: int | None = None,
               dask: str | None = None, folder: str | Path | None = None,
               progress: Callable[[str], None] | None = None) -> LessonRun:
    """Run every variant of ``lesson`` (a Lesson or a name in ``folder``) with the same seed
    (common random numbers), compute its figures and checks, and trace the focus account in
    replication 0 of the main variant.

    The variants' replications run on the Dask cluster at ``dask`` (``tcp://host:port``; also
    ``KAMSIM_DASK``), as :func:`kamsim.simulate` runs them; the trace, one replication of one
    account, runs here."""
    from kamsim.experiment import simulate
    from kamsim.trace import trace

    les = lesson if isinstance(lesson, Lesson) else find_lesson(lesson, folder)
    results: dict[str, Any] = {}
    values: dict[str, dict[str, np.ndarray]] = {}
    specs = les.specs()
    # a check is judged on the spread of paired differences, which one replication does not
    # have: refused before anything runs (a scenario's own `replications: 1` passes the
    # CLI's -r limit), not reported after the run as a check that cannot be told
    for label, spec in specs.items():
        n = spec.scenario.replications if replications is None else replications
        if n < 2:
            what = "1 replication" if n == 1 else f"{n} replications"
            raise RunError(f"lesson {les.name}: {what} in variant {label!r}; its checks need "
                           f"at least 2 (set replications: 2 or more in {les.scenario}, or "
                           "run with --replications 2 or more)")
    # one seed and one count for every variant (load_lesson refuses a variant with its own):
    # common random numbers, so replication i of every variant meets the same random future,
    # and a check subtracts them replication by replication
    first = specs[les.main].scenario
    seed = first.seed if seed is None else seed
    replications = first.replications if replications is None else replications
    story = None
    for label, spec in specs.items():
        if progress:
            progress(label)
        res = simulate(spec, replications=replications, seed=seed, workers=workers,
                       dask=dask, record_events=True)
        results[label] = res
        roles = list(spec.stakeholders.roles)
        values[label] = {f.name: measure(res, f, roles) for f in les.figures}
        if label == les.main:
            # traced now, while its prepared starting point is the one this process keeps
            # (one scenario): after the next variant, the trace prepared it again
            story = trace(spec, les.focus, seed=res.seed)
    main = results[les.main]
    return LessonRun(lesson=les, results=results, values=values,
                     checks=_evaluate(les, values, main.confidence), trace=story,
                     seed=main.seed, replications=main.replications, currency=main.currency)
