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
    figures:                         # what the answer table shows (measures: MEASURES)
      - {name: kept, measure: retained_after_departure, role: champion}
    checks:                          # what the answer claims, checked on paired replications
      - {figure: kept, higher: multi_threaded, lower: single_threaded}
    answer: Multi-threaded accounts keep ...

Trainers write lessons without touching Python; :func:`list_lessons` validates them all (the
names the lesson uses, every variant's scenario, the focus account in the main variant) and
reports every problem at ``path:line:col``, before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from kamsim.errors import InputError, Problem, RunError

__all__ = ["Lesson", "Figure", "Check", "LessonRun", "CheckResult", "MEASURES", "BOUNDS",
           "default_lessons_dir", "lesson_files", "load_lesson", "list_lessons",
           "find_lesson", "run_lesson", "measure"]

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        from kamsim.spec.models import CHURN_CAUSES

        if self.measure == "churn_cause" and self.cause not in CHURN_CAUSES:
            raise ValueError(f"measure churn_cause needs `cause`, one of {', '.join(CHURN_CAUSES)}")
        if self.measure.endswith("_after_departure") and not self.role:
            raise ValueError(f"measure {self.measure} needs `role` (whose departure)")
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
        if (self.figure is None) == (self.variant is None):
            raise ValueError("give exactly one of `figure` (compare variants) or `variant` "
                             "(compare figures)")
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

    @property
    def path(self) -> str:
        return self._path

    @model_validator(mode="after")
    def _refs(self) -> Lesson:
        # a RefError carries the path of the bad name, so it is reported at the name itself
        # (a plain ValueError here is located at the top of the file)
        from kamsim.spec.models import RefError

        names = [f.name for f in self.figures]
        pairs: list[tuple[str, str | None, list[str]]]
        if self.main not in self.variants:
            raise RefError(("main",), self.main, list(self.variants), key=False)
        for i, c in enumerate(self.checks):
            if c.figure is not None:
                pairs = [("figure", c.figure, names), ("higher", c.higher, list(self.variants)),
                         ("lower", c.lower, list(self.variants))]
            else:
                pairs = [("variant", c.variant, list(self.variants)),
                         ("higher", c.higher, names), ("lower", c.lower, names)]
            for key, value, known in pairs:
                if value not in known:
                    raise RefError(("checks", i, key), str(value), known, key=False)
        return self

    def scenario_path(self) -> Path:
        return Path(self._path).parent / self.scenario

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)


# ---------------------------------------------------------------- files


def default_lessons_dir() -> Path:
    """``$KAMSIM_LESSONS``, else ``./scenarios/lessons`` if it exists, else the lessons
    shipped next to the package."""
    env = os.environ.get("KAMSIM_LESSONS")
    if env:
        return Path(env)
    here = Path("scenarios/lessons")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "scenarios" / "lessons"


def lesson_files(folder: str | Path | None = None) -> list[Path]:
    """The ``*.lesson.yaml`` files of ``folder`` (default :func:`default_lessons_dir`), sorted."""
    return sorted(Path(folder or default_lessons_dir()).glob("*.lesson.yaml"))


def load_lesson(path: str | Path) -> Lesson:
    """Load and validate one lesson file, including that its scenario loads with every
    variant's overrides; raise :class:`InputError` with all problems, located."""
    from kamsim.spec.load import load_scenario, validate_model
    from kamsim.spec.yamlpos import load_yaml

    doc = load_yaml(path, display=str(path))
    if isinstance(doc.data, dict) and doc.data.get("kind") != "lesson":
        raise InputError([Problem(doc.locate(("kind",)), f"kind is {doc.data.get('kind')!r}",
                                  "kind: lesson")])
    model, problems = validate_model(doc, Lesson)
    if model is None:
        raise InputError(problems)
    assert isinstance(model, Lesson)
    model._path = str(path)
    expected = Path(path).name.removesuffix(".lesson.yaml")
    if model.name != expected:
        problems.append(Problem(doc.locate(("name",)), f"name {model.name!r} differs from "
                                f"the file name", f"name: {expected}"))
    target = model.scenario_path()
    if not target.is_file():
        problems.append(Problem(doc.locate(("scenario",)),
                                f"file {model.scenario!r} does not exist",
                                f"a scenario file relative to {Path(path).parent}"))
    else:
        for label, sets in model.variants.items():
            try:
                spec = load_scenario(target, sets)
            except InputError as exc:
                where = doc.locate(("variants", label))
                problems += [Problem(where, f"variant {label!r}: {p.format()}")
                             for p in exc.problems]
                continue
            problems += _check_names(doc, model, spec, label)
            if label == model.main:
                problems += _check_focus(doc, model, spec)
    if problems:
        raise InputError(problems)
    return model


def _check_names(doc: Any, lesson: Lesson, spec: Any, label: str) -> list[Problem]:
    """Tiers, roles and stages the figures name exist in the variant's rules."""
    out = []
    known = {"tier": list(spec.tiering.tiers), "role": list(spec.stakeholders.roles),
             "stage": [s.name for s in spec.stages.stages]}
    for i, f in enumerate(lesson.figures):
        for key, names in known.items():
            value = getattr(f, key)
            if value is not None and value not in names:
                out.append(Problem(doc.locate(("figures", i, key)),
                                   f"unknown {key} {value!r} in variant {label!r}",
                                   f"one of: {', '.join(names)}"))
    return out


def _check_focus(doc: Any, lesson: Lesson, spec: Any) -> list[Problem]:
    """The focus account is a starting account of the main variant (whose story is told):
    found now, not after every variant has run."""
    from kamsim.portfolio import starting_ids

    ids = starting_ids(spec)
    if (ids == lesson.focus).any():
        return []
    span = f"{ids[0]} to {ids[-1]}, " if ids.size else ""
    return [Problem(doc.locate(("focus",)),
                    f"focus: no account {lesson.focus!r} in {lesson.scenario!r}",
                    f"an account of variant {lesson.main!r}: {span}{ids.size} accounts")]


def list_lessons(folder: str | Path | None = None) -> list[Lesson]:
    """Every lesson of ``folder``, validated; all problems of all files raised together."""
    lessons, problems = [], []
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
    folder = Path(folder or default_lessons_dir())
    path = folder / f"{name}.lesson.yaml"
    if not path.is_file():
        known = [p.name.removesuffix(".lesson.yaml") for p in lesson_files(folder)]
        raise RunError(f"no lesson {name!r} in {folder} (known: {', '.join(known) or 'none'})")
    return load_lesson(path)


# ---------------------------------------------------------------- measures


def _col(result: Any, tier: str | None) -> int:
    return 0 if tier is None else 1 + list(result.tiers).index(tier)


def _departed_accounts(result: Any, role: str, roles: list[str]) -> list[set[str]]:
    ev = result.events()
    sel = ev[(ev["kind"] == "key_person_left") & (ev["code"] == roles.index(role))]
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
               folder: str | Path | None = None,
               progress: Callable[[str], None] | None = None) -> LessonRun:
    """Run every variant of ``lesson`` (a Lesson or a name in ``folder``) with the same seed
    (common random numbers), compute its figures and checks, and trace the focus account in
    replication 0 of the main variant."""
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario
    from kamsim.trace import trace

    les = lesson if isinstance(lesson, Lesson) else find_lesson(lesson, folder)
    results: dict[str, Any] = {}
    values: dict[str, dict[str, np.ndarray]] = {}
    specs = {label: load_scenario(les.scenario_path(), sets)
             for label, sets in les.variants.items()}
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
    for label, spec in specs.items():
        if progress:
            progress(label)
        seed = spec.scenario.seed if seed is None else seed
        res = simulate(spec, replications=replications, seed=seed, workers=workers,
                       record_events=True)
        results[label] = res
        roles = list(spec.stakeholders.roles)
        values[label] = {f.name: measure(res, f, roles) for f in les.figures}
    main = results[les.main]
    story = trace(specs[les.main], les.focus, seed=main.seed)
    return LessonRun(lesson=les, results=results, values=values,
                     checks=_evaluate(les, values, main.confidence), trace=story,
                     seed=main.seed, replications=main.replications, currency=main.currency)
