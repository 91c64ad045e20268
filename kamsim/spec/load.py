"""Load rule files and scenarios: YAML with positions -> validated, typed models.

Every problem in every file is collected and raised together as one :class:`InputError`
whose lines read ``path:line:col: what is wrong (what was expected)``.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kamsim.errors import InputError, Location, Problem
from kamsim.spec import models as m
from kamsim.spec.yamlpos import Document, load_yaml, load_yaml_text

__all__ = [
    "RULE_KINDS", "ScenarioSpec", "load_rule_file", "load_scenario", "load_any",
    "validate_model", "apply_overrides",
]

RULE_KINDS: dict[str, type[m.RuleFile]] = {
    "tiering": m.TieringRules,
    "service_levels": m.ServiceRules,
    "stages": m.StageRules,
    "stakeholders": m.StakeholderRules,
}
ALL_KINDS: dict[str, type[BaseModel]] = {**RULE_KINDS, "scenario": m.Scenario}


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario with all the rule files it names, validated and cross-checked."""

    scenario: m.Scenario
    tiering: m.TieringRules
    service: m.ServiceRules
    stages: m.StageRules
    stakeholders: m.StakeholderRules
    path: str
    root: str
    hashes: dict[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    portfolio_rows: Any = None  # an imported portfolio (kamsim.portfolio.ImportedTable)
    contacts: Any = None  # decision units from a CRM contacts export: {account id: ExplicitUnit}

    @property
    def name(self) -> str:
        return self.scenario.name

    def with_scenario(self, scenario: m.Scenario) -> ScenarioSpec:
        from dataclasses import replace

        return replace(self, scenario=scenario)

    def resolved(self) -> dict[str, Any]:
        """The fully resolved scenario: every default filled in, rule files inlined with their
        hashes, and the kamsim version, for the results folder and the run store."""
        from kamsim import __version__

        return {
            "kamsim_version": __version__,
            "scenario_file": self.path,
            "overrides": list(self.overrides),
            "rule_hashes": dict(self.hashes),
            "scenario": self.scenario.model_dump(mode="json", by_alias=True),
            "rules": {
                "tiering": self.tiering.model_dump(mode="json"),
                "service": self.service.model_dump(mode="json"),
                "stages": self.stages.model_dump(mode="json"),
                "stakeholders": self.stakeholders.model_dump(mode="json"),
            },
        }

    def digest(self) -> str:
        """A hash of the resolved content (what ran), stable across machines."""
        import json

        blob = json.dumps({k: v for k, v in self.resolved().items() if k != "scenario_file"},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- pydantic errors -> problems


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (for did-you-mean on keys)."""
    import typing

    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or cur is None:
            continue
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        f = cur.model_fields.get(part) or next(
            (f for f in cur.model_fields.values() if f.alias == part), None)
        if f is None:
            return None
        ann = f.annotation
        # unwrap Optional[...], list[...], dict[str, X]
        for _ in range(4):
            args = typing.get_args(ann)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                break
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if models:
                ann = models[0]
                break
            if args:
                ann = args[-1]
        cur = ann
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return cur
    return None


def _expected_from(err: ErrorDetails) -> str | None:
    t = err["type"]
    ctx = err.get("ctx") or {}
    if t in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sym = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
               "less_than": "<"}[t]
        bound = next(iter(ctx.values()), "?")
        return f"a number {sym} {bound}"
    if t == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    if t in ("float_type", "float_parsing"):
        return "a number"
    if t in ("int_type", "int_parsing", "int_from_float"):
        return "a whole number"
    if t in ("string_type",):
        return "text"
    if t in ("bool_type", "bool_parsing"):
        return "true or false"
    if t in ("dict_type", "model_type", "model_attributes_type"):
        return "a mapping of keys to values"
    if t in ("list_type", "tuple_type"):
        return "a list"
    if t == "string_pattern_mismatch":
        return "a lower_snake_case name"
    if t == "too_short":
        return "at least one entry"
    return None


def validate_model(doc: Document, model: type[BaseModel], base: tuple[Any, ...] = ()
                   ) -> tuple[BaseModel | None, list[Problem]]:
    """Validate ``doc.data`` (or the part at ``base``) against ``model``; locate each error."""
    data = doc.data
    for k in base:
        data = data[k]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems: list[Problem] = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            full = (*base, *loc)
            t = err["type"]
            if t == "extra_forbidden":
                owner = _model_at(model, loc)
                known = sorted(
                    (f.alias or n) for n, f in owner.model_fields.items()) if owner else []
                near = difflib.get_close_matches(str(loc[-1]), known, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                problems.append(Problem(doc.locate(full, key=True),
                                        f"unknown key {loc[-1]!r}",
                                        f"{hint}expected one of: {', '.join(known)}"))
                continue
            if t == "missing":
                problems.append(Problem(doc.locate(full[:-1]), f"missing key {loc[-1]!r}",
                                        "required"))
                continue
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, m.RefError):
                sub = (*full, *cause.path)
                problems.append(Problem(doc.locate(sub, key=cause.key), str(cause)))
                continue
            where = ".".join(str(p) for p in full) or "file"
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f", got {got!r}"
            problems.append(Problem(doc.locate(full), f"{where}: {msg}{shown}",
                                    _expected_from(err)))
        return None, problems


# ---------------------------------------------------------------- single files


def _kind_of(doc: Document) -> tuple[str | None, list[Problem]]:
    if not isinstance(doc.data, dict):
        return None, [Problem(doc.locate(()), "the file must be a mapping of keys to values",
                              "a YAML mapping with a `kind` key")]
    kind = doc.data.get("kind")
    if "kind" not in doc.data:
        return None, [Problem(doc.locate(()), "missing key 'kind'",
                              f"one of: {', '.join(ALL_KINDS)}")]
    if not isinstance(kind, str) or kind not in ALL_KINDS:
        near = difflib.get_close_matches(str(kind), list(ALL_KINDS), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        where = doc.locate(("kind",)) if "kind" in doc.data else doc.locate(())
        return None, [Problem(where, f"unknown file kind {kind!r}",
                              f"{hint}one of: {', '.join(ALL_KINDS)}")]
    return kind, []


def load_rule_file(path: str | Path, kind: str | None = None, *, display: str | None = None
                   ) -> tuple[Any, Document]:
    """Load and validate one rule file; ``kind`` (if given) must match the file's ``kind``."""
    doc = load_yaml(path, display=display)
    found, problems = _kind_of(doc)
    if problems:
        raise InputError(problems)
    if kind is not None and found != kind:
        raise InputError([Problem(doc.locate(("kind",)),
                                  f"this file is a {found!r} file", f"a {kind!r} file")])
    assert found is not None
    model, problems = validate_model(doc, ALL_KINDS[found])
    problems += check_expressions(found, model, doc) if model is not None else []
    if problems:
        raise InputError(problems)
    return model, doc


# ---------------------------------------------------------------- expressions


def _fields(extra: dict[str, str] | None = None) -> dict[str, Any]:
    from kamsim.fields import field_types

    f: dict[str, Any] = dict(field_types())
    f.update(extra or {})
    return f


def _check(doc: Document, path: tuple[Any, ...], text: str | None, fields: dict[str, Any],
           expect: str | None) -> list[Problem]:
    if text is None:
        return []
    from kamsim.rules.expr import ExprErrors, compile_expr

    try:
        compile_expr(text, fields, expect=expect)  # type: ignore[arg-type]
    except ExprErrors as exc:
        # locate_text follows the text past an opening quote and across folded lines
        return [Problem(doc.locate_text(path, e.offset), e.message, e.expected)
                for e in exc.problems]
    return []


def check_expressions(kind: str, model: Any, doc: Document,
                      prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Compile every rule expression in one validated file against the account fields."""
    out: list[Problem] = []
    f = _fields()
    if kind == "tiering":
        for name, ind in model.indicators.items():
            if name in f:  # the table sees indicators over fields: `revenue` would be a rank
                out.append(Problem(
                    doc.locate((*prefix, "indicators", name), key=True),
                    f"indicator '{name}' has the name of an account field, so the table "
                    f"could not tell its 0-1 value from the field's",
                    f"another name, e.g. '{name}_score'"))
            out += _check(doc, (*prefix, "indicators", name, "expr"), ind.expr, f, "number")
        ft = _fields({name: "number" for name in model.indicators})
        for i, row in enumerate(model.table.rows):
            out += _check(doc, (*prefix, "table", "rows", i, "when"), row.when, ft, "bool")
        q = model.quadrants
        out += _check(doc, (*prefix, "quadrants", "volume"), q.volume, f, "number")
        out += _check(doc, (*prefix, "quadrants", "loyalty"), q.loyalty, f, "number")
    elif kind == "stages":
        for i, st in enumerate(model.stages):
            out += _check(doc, (*prefix, "stages", i, "up_when"), st.up_when, f, "bool")
            out += _check(doc, (*prefix, "stages", i, "down_when"), st.down_when, f, "bool")
        u = model.uncoupled
        out += _check(doc, (*prefix, "uncoupled", "when"), u.when, f, "bool")
        out += _check(doc, (*prefix, "uncoupled", "recover_when"), u.recover_when, f, "bool")
    elif kind == "scenario":
        out += _check(doc, (*prefix, "strategy", "priority"), model.strategy.priority, f,
                      "number")
    return out


# ---------------------------------------------------------------- scenario


def _workspace_root(scenario: Path) -> Path:
    """The folder tree a scenario may read from: the nearest ancestor holding a ``rules/``
    folder, else the scenario's own folder."""
    for parent in [scenario.parent, *scenario.parent.parents]:
        if (parent / "rules").is_dir():
            return parent
    return scenario.parent


def _resolve_ref(doc: Document, path_key: tuple[Any, ...], ref: str, base: Path, root: Path
                 ) -> tuple[Path | None, list[Problem]]:
    target = (base / ref).resolve()
    try:
        target.relative_to(root.resolve())
    except ValueError:
        return None, [Problem(doc.locate(path_key), f"path {ref!r} leads outside {root}",
                              "a path inside the scenario's folder tree")]
    if not target.is_file():
        return None, [Problem(doc.locate(path_key), f"file {ref!r} does not exist",
                              f"a file relative to {base}")]
    return target, []


def _parse_override(item: str, index: int) -> tuple[list[str], Any, Location]:
    where = Location(f"--set[{index}]", 1, 1)
    if "=" not in item:
        raise InputError([Problem(where, f"override {item!r} has no '='", "KEY=VALUE")])
    key, _, raw = item.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise InputError([Problem(where, f"bad key {key!r}", "a dotted path like a.b.c")])
    value = load_yaml_text(raw if raw.strip() else "''", where.path).data
    return parts, value, where


def apply_overrides(data: dict[str, Any], doc: Document, overrides: list[str]) -> None:
    """Apply ``--set key.path=value`` to the raw scenario data in place; each override's
    value is parsed as YAML (safely) and located as ``--set[i]`` in messages. Every bad
    override is reported, not only the first."""
    problems: list[Problem] = []
    for i, item in enumerate(overrides):
        try:
            _apply_override(data, doc, item, i)
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)


def _apply_override(data: dict[str, Any], doc: Document, item: str, i: int) -> None:
    parts, value, where = _parse_override(item, i)
    cur: Any = data
    for depth, part in enumerate(parts[:-1]):
        if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
            continue
        if not isinstance(cur, dict):
            raise InputError([Problem(where, f"{'.'.join(parts[:depth + 1])} is not a mapping",
                                      "a path to a scenario value")])
        cur = cur.setdefault(part, {})
    last = parts[-1]
    if isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        cur[int(last)] = value
    elif isinstance(cur, dict):
        cur[last] = value
    else:
        raise InputError([Problem(where, f"{'.'.join(parts[:-1])} is not a mapping",
                                  "a path to a scenario value")])
    path = tuple(int(p) if p.isdigit() else p for p in parts)
    doc.values[path] = where
    doc.keys[path] = where
    doc.spans.pop(path, None)  # the value no longer comes from the file
    doc.quote.pop(path, None)


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ScenarioSpec:
    """Load a scenario and every rule file it names; raise :class:`InputError` with all the
    problems found in all of them."""
    p = Path(path)
    doc = load_yaml(p, display=str(path))
    kind, problems = _kind_of(doc)
    if problems:
        raise InputError(problems)
    if kind != "scenario":
        raise InputError([Problem(doc.locate(("kind",)), f"this is a {kind!r} file",
                                  "a scenario file (kind: scenario)")])
    apply_overrides(doc.data, doc, list(overrides))
    scenario, problems = validate_model(doc, m.Scenario)
    if scenario is None:
        raise InputError(problems)
    assert isinstance(scenario, m.Scenario)
    problems += check_expressions("scenario", scenario, doc)
    root = _workspace_root(p.resolve())
    rules: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    wanted = {"tiering": "tiering", "service": "service_levels", "stages": "stages",
              "stakeholders": "stakeholders"}
    for slot, kind_name in wanted.items():
        ref = getattr(scenario.rules, slot)
        target, probs = _resolve_ref(doc, ("rules", slot), ref, p.resolve().parent, root)
        problems += probs
        if target is None:
            continue
        shown = str(Path(path).parent / ref)
        try:
            model, _ = load_rule_file(target, kind_name, display=shown)
            rules[slot] = model
            hashes[shown] = hashlib.sha256(target.read_bytes()).hexdigest()
        except InputError as exc:
            problems += exc.problems
    imported = None
    if scenario.portfolio.import_ is not None:
        target, probs = _resolve_ref(doc, ("portfolio", "import", "path"),
                                     scenario.portfolio.import_.path, p.resolve().parent, root)
        problems += probs
        if target is not None:
            from kamsim.portfolio import read_portfolio_csv

            shown = str(Path(path).parent / scenario.portfolio.import_.path)
            try:
                imported = read_portfolio_csv(target, scenario.portfolio.import_, display=shown)
                hashes[shown] = hashlib.sha256(target.read_bytes()).hexdigest()
            except InputError as exc:
                problems += exc.problems
    contacts = None
    if scenario.contacts is not None:
        target, probs = _resolve_ref(doc, ("contacts",), scenario.contacts, p.resolve().parent,
                                     root)
        problems += probs
        if target is not None and "stakeholders" in rules:
            from kamsim.dmu import read_contacts_csv

            shown = str(Path(path).parent / scenario.contacts)
            try:
                contacts = read_contacts_csv(target, list(rules["stakeholders"].roles),
                                             display=shown)
                hashes[shown] = hashlib.sha256(target.read_bytes()).hexdigest()
            except InputError as exc:
                problems += exc.problems
    if not problems:
        problems += _cross_check(doc, scenario, rules)
    if problems:
        raise InputError(problems)
    return ScenarioSpec(scenario=scenario, tiering=rules["tiering"], service=rules["service"],
                        stages=rules["stages"], stakeholders=rules["stakeholders"],
                        path=str(path), root=str(root), hashes=hashes,
                        overrides=tuple(overrides), portfolio_rows=imported,
                        contacts=contacts)


def _cross_check(doc: Document, sc: m.Scenario, rules: dict[str, Any]) -> list[Problem]:
    """References between files: every tier has a service level and no level names an
    unknown tier; the `equal` strategy's level exists."""
    out: list[Problem] = []
    tiers = list(rules["tiering"].tiers)
    levels = rules["service"].levels
    missing = [t for t in tiers if t not in levels]
    if missing:
        out.append(Problem(doc.locate(("rules", "service")),
                           f"service levels missing for tier(s) {', '.join(missing)}",
                           "a service level for every tier in the tiering file"))
    for name in levels:
        if name not in tiers:
            near = difflib.get_close_matches(name, tiers, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            out.append(Problem(doc.locate(("rules", "service")),
                               f"service level {name!r} names no tier of the tiering file",
                               f"{hint}one of: {', '.join(tiers)}"))
    if sc.strategy.level is not None and sc.strategy.level not in tiers:
        out.append(Problem(doc.locate(("strategy", "level")),
                           f"unknown service level {sc.strategy.level!r}",
                           f"one of: {', '.join(tiers)}"))
    return out


def _csv_kind(path: Path) -> str | None:
    """``contacts`` or ``portfolio`` by the CSV's header (a ``person`` column makes a contact
    export; else an ``account_id`` column a portfolio), None if neither. A header that cannot
    be read counts as a portfolio, whose reader reports why at ``file:1:1``."""
    import csv

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh))
    except (StopIteration, csv.Error, UnicodeDecodeError):
        return "portfolio"
    names = {h.strip().lower().replace("-", "_").replace(" ", "_") for h in header}
    return "contacts" if "person" in names else "portfolio" if "account_id" in names else None


def load_any(path: str | Path) -> tuple[str, Any]:
    """Validate any kamsim file by its ``kind``: a scenario (with its rule files), one rule
    file, a lesson, or a CSV (a portfolio or a contact export, told apart by the header).
    Returns ``(kind, model)``."""
    if Path(path).suffix.lower() == ".csv":
        if not Path(path).is_file():
            raise InputError([Problem(Location(str(path)), "cannot read file",
                                      "an existing, readable file")])
        kind = _csv_kind(Path(path))
        if kind == "contacts":  # roles are checked when a scenario names the file
            from kamsim.dmu.crm import read_contacts_csv

            return kind, read_contacts_csv(path, None, display=str(path))
        if kind is None:
            raise InputError([Problem(
                Location(str(path), 1, 1), "cannot tell which kind of CSV this is",
                "a portfolio (CRM accounts export) with an account_id column, or a contact "
                "export with account_id and person columns")])
        from kamsim.portfolio import read_portfolio_csv

        return kind, read_portfolio_csv(path, m.PortfolioImport(path=str(path)),
                                        display=str(path))
    doc = load_yaml(path, display=str(path))
    if isinstance(doc.data, dict) and doc.data.get("kind") == "lesson":
        # a trainer's lesson: its loader checks the scenario and every variant
        from kamsim.lessons import load_lesson

        return "lesson", load_lesson(path)
    kind, problems = _kind_of(doc)
    if problems:
        raise InputError(problems)
    assert kind is not None
    if kind == "scenario":
        return kind, load_scenario(path)
    model, _ = load_rule_file(path, kind, display=str(path))
    return kind, model


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
