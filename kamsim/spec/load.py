"""Load rule files and scenarios: YAML with positions -> validated, typed models.

Every problem in every file is collected and raised together as one :class:`InputError`
whose lines read ``path:line:col: what is wrong (what was expected)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kamsim.blocks import cache_block
from kamsim.errors import InputError, Location, Problem, did_you_mean
from kamsim.spec import models as m
from kamsim.spec.yamlpos import Document, load_yaml, load_yaml_text

__all__ = [
    "RULE_KINDS", "FILE_KINDS", "ScenarioSpec", "load_rule_file", "load_scenario", "load_any",
    "validate_model", "validate_places", "touches", "apply_overrides", "TablePlace",
    "reading_once",
]

RULE_KINDS: dict[str, type[m.RuleFile]] = {
    "tiering": m.TieringRules,
    "service_levels": m.ServiceRules,
    "stages": m.StageRules,
    "stakeholders": m.StakeholderRules,
}
ALL_KINDS: dict[str, type[BaseModel]] = {**RULE_KINDS, "scenario": m.Scenario}
#: every kind of YAML file kamsim reads: a lesson's model and loader are kamsim.lessons (it
#: runs scenarios), so it is named here, not in ALL_KINDS
FILE_KINDS: list[str] = [*ALL_KINDS, "lesson"]


@dataclass(frozen=True)
class TablePlace:
    """Where the tiering file's decision table is: a problem only a portfolio reveals (two
    rows of a ``unique`` table that both match an account) is reported there, in the same
    ``path:line:col`` form as a problem found when the file is read."""

    policy: Location  # the `hit_policy` value (the `table` key if the file leaves it out)
    rows: tuple[Location, ...]  # each row's `when`


def table_place(doc: Document) -> TablePlace:
    """The :class:`TablePlace` of a valid tiering file's ``doc``."""
    rows = doc.data["table"]["rows"]
    policy = (doc.locate(("table", "hit_policy")) if "hit_policy" in doc.data["table"]
              else doc.locate(("table",), key=True))
    return TablePlace(policy, tuple(doc.locate(("table", "rows", i, "when"))
                                    for i in range(len(rows))))


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
    table_place: TablePlace | None = None  # where the tiering table is, for its problems

    @property
    def name(self) -> str:
        return self.scenario.name

    def with_scenario(self, scenario: m.Scenario) -> ScenarioSpec:
        from dataclasses import replace

        return replace(self, scenario=scenario)

    def with_seed(self, seed: int) -> ScenarioSpec:
        """This scenario with ``seed: seed``: what ``--seed`` and ``simulate(seed=...)`` run.

        The seed builds the portfolio and the decision units as well as seeding the
        replications, so a seed given apart from the file must change all of them, and the
        resolved scenario must show it: a run listed as seed 5 is reproduced by the file
        with ``seed: 5``. Recorded as the override ``seed=N`` (what ``--set seed=N`` gives,
        so both have the same hash). The scenario itself when the seed is already its own."""
        if seed == self.scenario.seed:
            return self
        if not 0 <= seed <= m.SEED_MAX:
            raise ValueError(f"seed {seed} is out of range (expected a whole number from 0 to "
                             f"{m.SEED_MAX})")
        from dataclasses import replace

        return replace(self, scenario=self.scenario.model_copy(update={"seed": seed}),
                       overrides=(*self.overrides, f"seed={seed}"))

    def notes(self) -> list[Problem]:
        """What ``kamsim validate`` tells about a valid scenario, located: a segment of the
        imported accounts with no decision-unit template of its own. Its accounts get the
        ``default`` unit, as docs/rules.md promises (an export's values are taken as written,
        so it is not a problem), but a misspelt segment (``Entreprise``) would otherwise give
        them another unit without a word."""
        import numpy as np

        rows = self.portfolio_rows
        if rows is None or rows.segment is None:
            return []
        units = self.stakeholders.units
        named = [u for u in units if u != "default"]
        # accounts with a map of their own (contacts, the rules' `accounts`) use no template
        own = np.isin(rows.account_id, [*self.stakeholders.accounts, *(self.contacts or ())])
        out = []
        for seg, at in rows.segment_at.items():
            if seg in units:
                continue
            n = int(((rows.segment == seg) & ~own).sum())
            if not n:
                continue
            hint = did_you_mean(seg.lower(), named)
            out.append(Problem(at, f"segment {seg!r} has no decision-unit template of its own, "
                               f"so its {n} account{'s' if n != 1 else ''} get{'' if n != 1 else 's'} "
                               "the default one", f"{hint}templates: {', '.join(named)}"))
        return out

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
    """The model class that owns the last element of ``loc`` (for did-you-mean on keys).

    Follows the annotations: a part of ``loc`` under a ``dict[str, X]`` field is one of the
    user's own keys (``indicators.volume``), not a field name, so it steps into ``X``; a
    number steps into a list's entries."""
    import typing

    def unwrap(ann: Any) -> Any:
        # Annotated[X, ...] -> X; X | None -> X (a union of models: the first model)
        for _ in range(4):
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                return ann
            origin, args = typing.get_origin(ann), typing.get_args(ann)
            if origin in (dict, list, tuple):
                return ann
            inner = [a for a in args if a is not type(None)]
            models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
            if models:
                return models[0]
            if not inner:
                return ann
            ann = inner[0]
        return ann

    cur: Any = model
    for part in loc[:-1]:
        cur = unwrap(cur)
        origin, args = typing.get_origin(cur), typing.get_args(cur)
        if origin is dict and args:
            cur = args[-1]  # `part` is a key the user chose
        elif origin in (list, tuple) and args:
            if isinstance(part, int):
                cur = args[0]
        elif isinstance(cur, type) and issubclass(cur, BaseModel):
            f = cur.model_fields.get(part) or next(
                (f for f in cur.model_fields.values() if f.alias == part), None)
            if f is None:
                return None
            cur = f.annotation
        else:
            return None
    cur = unwrap(cur)
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
    found, problems, _bad = _validate(doc, model, base)
    return found, problems


def _validate(doc: Document, model: type[BaseModel], base: tuple[Any, ...] = ()
              ) -> tuple[BaseModel | None, list[Problem], set[tuple[Any, ...]]]:
    """:func:`validate_model`, also returning the paths (from the file's top) that have a
    schema error, so later checks can leave those places alone."""
    data = doc.data
    for k in base:
        data = data[k]
    # a value the reading already reported (a .inf, read as null): a problem of its own, not
    # one more of the schema's, and left alone by the later checks
    unreadable = {p for p in doc.unreadable if p[:len(base)] == base}
    try:
        return model.model_validate(data), [], set(unreadable)
    except ValidationError as exc:
        problems: list[Problem] = []
        bad: set[tuple[Any, ...]] = set(unreadable)
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            full = (*base, *loc)
            bad.add(full)
            if _touches(full, unreadable):  # the value, or its object's own check of it
                continue
            t = err["type"]
            if t == "extra_forbidden":
                owner = _model_at(model, loc)
                known = sorted(
                    (f.alias or n) for n, f in owner.model_fields.items()) if owner else []
                hint = did_you_mean(str(loc[-1]), known)
                problems.append(Problem(doc.locate(full, key=True),
                                        f"unknown key {loc[-1]!r}",
                                        f"{hint}expected one of: {', '.join(known)}"))
                continue
            if t == "missing":
                problems.append(Problem(doc.locate(full[:-1]), f"missing key {loc[-1]!r}",
                                        "required"))
                continue
            cause = (err.get("ctx") or {}).get("error")
            causes = cause.errors if isinstance(cause, m.RefErrors) else [cause]
            placed = [c for c in causes if isinstance(c, m.PlacedError)]
            if placed and len(placed) == len(causes):
                for c in placed:
                    sub = (*full, *c.path)
                    bad.add(sub)
                    problems.append(_placed(doc, sub, c))
                continue
            where = ".".join(str(p) for p in full) or "file"
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f", got {got!r}"
            problems.append(Problem(doc.locate(full), f"{where}: {msg}{shown}",
                                    _expected_from(err)))
        # pydantic ran the whole-object checks (repeated names, sums, references inside
        # the file) only of the objects whose every field was valid: run them all on the raw
        # data, leaving out places that already have a problem of their own (a check that
        # ran, a schema problem of the value or of the key). A problem inside an object does
        # not hide the object's check: a bad count in one template does not hide a missing
        # `default` template, nor a bad wallet sigma a sum of segment shares
        for c in m.object_checks(model, data):
            sub = (*base, *c.path)
            # (an object holding an unreadable value cannot be judged whole: `median: .nan`
            # is not a missing median)
            if sub not in bad and (*sub, "[key]") not in bad and not _touches(sub, unreadable):
                bad.add(sub)
                problems.append(_placed(doc, sub, c))
        return None, list(dict.fromkeys(problems)), bad


def _placed(doc: Document, path: tuple[Any, ...], error: m.PlacedError) -> Problem:
    """A whole-object check's problem at ``path``. At a place outside the file (a ``--set``,
    a sweep's ``--vary``), whose location alone does not say which key it is, the message
    names the key as a schema problem's does."""
    loc = doc.locate(path, key=error.key)
    where = ".".join(str(p) for p in path)
    text = f"{where}: {error}" if loc.path != doc.path and where else str(error)
    return Problem(loc, text, error.expected)


def _touches(path: tuple[Any, ...], bad: set[tuple[Any, ...]]) -> bool:
    """True if the value at ``path`` or a part inside it has a schema error (a problem there
    is already reported; a second one about the same text would be noise)."""
    return any(b[:len(path)] == path for b in bad)


def validate_places(doc: Document, model: type[BaseModel]
                    ) -> tuple[BaseModel | None, list[Problem], set[tuple[Any, ...]]]:
    """:func:`validate_model`, also returning the paths with a schema error, for a loader that
    checks more of the file afterwards and leaves those places alone (:func:`touches`)."""
    return _validate(doc, model)


def touches(path: tuple[Any, ...], bad: set[tuple[Any, ...]]) -> bool:
    """True if the value at ``path`` or a part inside it has a schema error in ``bad``."""
    return _touches(path, bad)


# ---------------------------------------------------------------- reading each file once

#: what :func:`reading_once` keeps: (what was done, the file as it is on disk, its other
#: arguments) -> ("ok", value) or ("problems", [Problem, ...])
_READ: ContextVar[dict[tuple[Any, ...], tuple[str, Any]] | None] = ContextVar(
    "kamsim_read_once", default=None)


@contextmanager
def reading_once() -> Iterator[None]:
    """Within the block, each file :func:`load_scenario` reads is read, parsed, checked and
    hashed once, however many scenarios are loaded from it: a sweep's points and a lesson's
    variants are one file with other overrides, and parsing the same YAML again for every
    point was most of the time a 40-point sweep took to check its points.

    A file is known by its resolved path and what ``stat`` says of it (size, modification
    time, inode), so a file changed on disk during the block is read again, and an override
    that names another file (``rules.tiering=...``) reads that one. A file's problems are
    kept too, so every point that reads a bad file reports them.

    A block inside another joins it (the outer block's files are known inside): listing the
    lessons or validating several scenarios reads the rule files they share once, though
    each lesson's load opens its own block."""
    with cache_block(_READ):
        yield


def _once(what: str, path: Path, args: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """``make()`` (which reads ``path``), or what it gave for the same file and ``args``
    earlier in the :func:`reading_once` block; an InputError is kept and raised again."""
    cache = _READ.get()
    if cache is None:
        return make()
    try:
        st = path.stat()
    except OSError:  # (make() words it)
        return make()
    key = (what, str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, *args)
    if key not in cache:
        try:
            cache[key] = ("ok", make())
        except InputError as exc:
            cache[key] = ("problems", list(exc.problems))
    how, value = cache[key]
    if how == "problems":
        raise InputError(list(value))
    return value


def _hashed(read: Callable[..., Any]) -> tuple[Any, str]:
    """What ``read(on_read=...)`` makes of a data file, and the hash of the bytes it read and
    parsed (recorded with the run): the file is read once, as a rule file's hash is of the
    text parsed, and a second read might find another version of it."""
    digest = hashlib.sha256()
    value = read(on_read=digest.update)
    return value, digest.hexdigest()


# ---------------------------------------------------------------- single files


def _kind_of(doc: Document) -> tuple[str | None, list[Problem]]:
    if not isinstance(doc.data, dict):
        return None, [Problem(doc.locate(()), "the file must be a mapping of keys to values",
                              "a YAML mapping with a `kind` key")]
    kind = doc.data.get("kind")
    if "kind" not in doc.data:
        return None, [Problem(doc.locate(()), "missing key 'kind'",
                              f"one of: {', '.join(FILE_KINDS)}")]
    if not isinstance(kind, str) or kind not in FILE_KINDS:
        hint = did_you_mean(str(kind), FILE_KINDS)
        where = doc.locate(("kind",)) if "kind" in doc.data else doc.locate(())
        what = "kind is empty" if kind is None else f"unknown file kind {kind!r}"
        return None, [Problem(where, what, f"{hint}one of: {', '.join(FILE_KINDS)}")]
    return kind, []


def load_rule_file(path: str | Path, kind: str | None = None, *, display: str | None = None
                   ) -> tuple[Any, Document]:
    """Load and validate one rule file; ``kind`` (if given) must match the file's ``kind``."""
    model, doc, problems, _bad = _read_rule_file(path, kind, display)
    if problems:
        raise InputError(problems)
    return model, doc


def _read_rule_file(path: str | Path, kind: str | None, display: str | None,
                    expressions: bool = True
                    ) -> tuple[Any, Document, list[Problem], set[tuple[Any, ...]]]:
    """:func:`load_rule_file`, returning its problems instead of raising them, with the
    document and the paths that have a schema error: a scenario still reads the parts of a
    rule file with problems that other files are checked against (its service levels).

    Without ``expressions`` the rule expressions are left for the caller to check (a
    scenario checks them once, knowing the names its other files declare)."""
    doc = load_yaml(path, display=display, keep_going=True)
    found, problems = _kind_of(doc)
    if problems:
        return None, doc, doc.problems + problems, {()}
    if kind is not None and found != kind:
        return None, doc, [*doc.problems, Problem(doc.locate(("kind",)),
                                                  f"this file is a {found!r} file",
                                                  f"a {kind!r} file")], {()}
    if found not in ALL_KINDS:  # a lesson: kamsim.lessons.load_lesson reads it
        return None, doc, [*doc.problems, Problem(doc.locate(("kind",)),
                                                  f"this file is a {found!r} file",
                                                  f"one of: {', '.join(ALL_KINDS)}")], {()}
    assert found is not None
    model, problems, bad = _validate(doc, ALL_KINDS[found])
    problems += doc.problems
    # (it needs only the role names: a problem inside a role does not hide it)
    if found == "stakeholders" and _key_names(doc, bad, "roles") is not None:
        problems += [_placed(doc, e.path, e) for e in m.special_role_checks(doc.data)]
    if expressions:
        problems += check_expressions(found, doc.data, doc, skip=bad)
    return (None if problems else model), doc, problems, bad


# ---------------------------------------------------------------- expressions


def _fields(extra: dict[str, str] | None = None) -> dict[str, Any]:
    from kamsim.fields import field_types

    f: dict[str, Any] = dict(field_types())
    f.update(extra or {})
    return f


def _check(doc: Document, path: tuple[Any, ...], text: str | None, fields: dict[str, Any],
           expect: str | None, values: dict[str, list[str]] | None = None) -> list[Problem]:
    if text is None:
        return []
    from kamsim.rules.expr import ExprErrors, compile_expr

    try:
        compile_expr(text, fields, expect=expect, values=values)  # type: ignore[arg-type]
    except ExprErrors as exc:
        # locate_text follows the text past an opening quote and across folded lines
        return [Problem(doc.locate_text(path, e.offset), e.message, e.expected)
                for e in exc.problems]
    return []


def _at(data: Any, *path: Any) -> Any:
    """The raw value at ``path``, or None where the data has another shape."""
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _items(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return list(enumerate(value))
    return []


def check_expressions(kind: str, data: Any, doc: Document, prefix: tuple[Any, ...] = (),
                      skip: set[tuple[Any, ...]] | frozenset[tuple[Any, ...]] = frozenset(),
                      values: dict[str, list[str]] | None = None) -> list[Problem]:
    """Compile every rule expression in one file's raw ``data`` against the account fields.

    Each expression is checked on its own, so this runs even when the schema check failed
    elsewhere in the file; places in ``skip`` (paths with a schema error, from the file's
    top) are left out, and so are values that are not text (the schema check reports them).
    Expressions a file leaves out take their defaults, which are valid. ``values`` (see
    :func:`known_values`) are the names a string compared with `tier`, `stage`, ... must be
    one of; by default the names ``data`` itself declares."""
    out: list[Problem] = []
    f = _fields()
    if values is None:
        values = known_values(kind, data)

    def check(path: tuple[Any, ...], text: Any, fields: dict[str, Any], expect: str
              ) -> list[Problem]:
        full = (*prefix, *path)
        text = m.expr_text(text)  # (a YAML `true` or number is that expression)
        if not isinstance(text, str) or _touches(full, set(skip)):
            return []
        return _check(doc, full, text, fields, expect, values)

    def outputs(path: tuple[Any, ...], text: Any, allowed: tuple[str, ...] = ()
                ) -> list[Problem]:
        """The tiering's own results read by its file: the first tiering has none yet."""
        full = (*prefix, *path)
        if not isinstance(text, str) or _touches(full, set(skip)):
            return []
        return _tiering_outputs(doc, full, text, allowed)

    if kind == "tiering":
        indicators = [(n, ind) for n, ind in _items(_at(data, "indicators"))
                      if isinstance(n, str)]
        for name, ind in indicators:
            if name in f:  # the table sees indicators over fields: `revenue` would be a rank
                out.append(Problem(
                    doc.locate((*prefix, "indicators", name), key=True),
                    f"indicator '{name}' has the name of an account field, so the table "
                    f"could not tell its 0-1 value from the field's",
                    f"another name, e.g. '{name}_score'"))
            out += check(("indicators", name, "expr"), _at(ind, "expr"), f, "number")
            out += outputs(("indicators", name, "expr"), _at(ind, "expr"))
        ft = _fields({name: "number" for name, _ in indicators})
        for i, row in _items(_at(data, "table", "rows")):
            out += check(("table", "rows", i, "when"), _at(row, "when"), ft, "bool")
            out += outputs(("table", "rows", i, "when"), _at(row, "when"), ("score",))
        for axis in ("volume", "loyalty"):
            out += check(("quadrants", axis), _at(data, "quadrants", axis), f, "number")
            out += outputs(("quadrants", axis), _at(data, "quadrants", axis))
    elif kind == "stages":
        for i, st in _items(_at(data, "stages")):
            for key in ("up_when", "down_when"):
                out += check(("stages", i, key), _at(st, key), f, "bool")
        for key in ("when", "recover_when"):
            out += check(("uncoupled", key), _at(data, "uncoupled", key), f, "bool")
    elif kind == "scenario":
        out += check(("strategy", "priority"), _at(data, "strategy", "priority"), f, "number")
    return out


def _tiering_outputs(doc: Document, path: tuple[Any, ...], text: str,
                     allowed: tuple[str, ...]) -> list[Problem]:
    """A tiering expression reading ``tier``, ``score`` or ``quadrant`` (but ``allowed``):
    the tiering works them out, so the first one (month 0, ``kamsim tier``) would read no
    value, and a re-tiering the previous one's. Located at each such name (outside quotes)."""
    import re

    from kamsim.compile import TIERING_OUTPUTS

    # quoted text blanked (same length), so a name inside a string is not taken for a field
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", lambda mt: " " * len(mt.group()), text)
    out = []
    for mt in re.finditer(r"(?<![\w.])(" + "|".join(TIERING_OUTPUTS) + r")(?![\w(])", bare):
        name = mt.group(1)
        if name in allowed:
            continue
        why = ("the score is worked out from the indicators, so only the table may read it"
               if name == "score" else f"{name} is worked out by the tiering itself")
        out.append(Problem(doc.locate_text(path, mt.start()),
                           f"{why}: the first tiering has no {name} to read",
                           "the portfolio fields and the other state fields"
                           + (", and `score` in the table" if name == "score" else "")))
    return out


def known_values(kind: str | None = None, data: Any = None, rules: dict[str, Any] | None = None,
                 scenario: Any = None) -> dict[str, list[str]]:
    """The names each text field can hold, as far as they are known here, so that a rule
    comparing `tier` with 'kye' is refused instead of silently never matching.

    The quadrants are fixed. A lone rule file knows its own names (the tiering file its
    tiers, the stages file its stages); a scenario knows both from its loaded rule files
    (``rules``), and the segments and industries of a generated portfolio (``scenario``). An
    imported portfolio's values are whatever the export holds, so they are not checked."""
    from kamsim.fields import QUADRANT_NAMES

    out: dict[str, list[str]] = {"quadrant": list(QUADRANT_NAMES)}
    rules = rules or {}
    if "tiering" in rules:
        out["tier"] = list(rules["tiering"].tiers)
    elif kind == "tiering":
        tiers = _at(data, "tiers")
        if isinstance(tiers, list) and tiers and all(isinstance(t, str) for t in tiers):
            out["tier"] = tiers
    if "stages" in rules:
        st = rules["stages"]
        out["stage"] = [s.name for s in st.stages] + [st.uncoupled.name]
    elif kind == "stages":
        names = [_at(s, "name") for _, s in _items(_at(data, "stages"))]
        gone = _at(data, "uncoupled", "name")
        if not isinstance(_at(data, "uncoupled"), dict) or gone is None:
            gone = m.Uncoupling.model_fields["name"].default
        names.append(gone)
        if names[:-1] and all(isinstance(n, str) for n in names):
            out["stage"] = names
    if isinstance(scenario, m.Scenario) and scenario.portfolio.generate is not None:
        out["segment"] = list(scenario.portfolio.generate.segments)
        out["industry"] = list(scenario.portfolio.generate.industries)
    return out


# ---------------------------------------------------------------- scenario


def _workspace_root(scenario: Path) -> Path:
    """The folder tree a scenario may read from: the nearest ancestor holding a ``rules/``
    folder, else the scenario's own folder (which then holds none: :func:`_resolve_ref`
    tells the two apart by that)."""
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
        # (the workspace is widened only by a folder named rules/, which authors of a rule
        # set of their own in ../ruleset/ cannot guess from "folder tree". The root holds a
        # rules/ folder exactly when _workspace_root found one: else it is the scenario's own
        # folder, and saying "the nearest folder that holds rules/" would send them looking
        # for one that is not there)
        why = ("the nearest folder at or above the scenario's own that holds a folder named "
               "rules/" if (root / "rules").is_dir() else
               "no folder at or above the scenario's own holds a folder named rules/, so the "
               "workspace is the scenario's own folder; a folder named rules/ widens it to "
               "the folder that holds it")
        return None, [Problem(doc.locate(path_key), f"path {ref!r} leads outside {root}, "
                              "the scenario's workspace", f"a path inside {root}: {why}")]
    if target.is_dir():
        return None, [Problem(doc.locate(path_key), f"{ref!r} is a folder, not a file",
                              f"a file relative to {base}")]
    if not target.is_file():
        return None, [Problem(doc.locate(path_key), f"file {ref!r} does not exist",
                              f"a file relative to {base}")]
    return target, []


@dataclass(frozen=True)
class _Override:
    """One ``KEY=VALUE`` taken apart: the key's parts, the value read as YAML, and the column
    (in the option's text) where each part and the value start."""

    parts: list[str]
    part_cols: list[int]
    value: Document  # located in the option's text


def _parse_override(item: str, where: Location) -> _Override:
    """``item`` taken apart; a problem with it is located in ``where.path`` at the column it
    is about (the key's for a missing '=' or a bad key, inside the value for YAML it cannot
    read), as a --vary value is."""
    at = Location(where.path, 1, 1 + len(item) - len(item.lstrip()))
    if "=" not in item:
        raise InputError([Problem(at, f"override {item!r} has no '='", "KEY=VALUE")])
    key, _, raw = item.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise InputError([Problem(at, f"bad key {key!r}", "a dotted path like a.b.c")])
    part_cols, col = [], at.col
    for part in parts:
        part_cols.append(col)
        col += len(part) + 1
    # the key blanked out, so that the columns YAML gives (in its messages too) are the
    # option's: a value of one line only (a block value's indentation starts at its own line)
    text = raw if raw.strip() else "''"
    value = load_yaml_text(text if "\n" in raw else " " * (len(key) + 1) + text, where.path)
    return _Override(parts, part_cols, value)


def apply_overrides(data: dict[str, Any], doc: Document, overrides: list[str]) -> None:
    """Apply ``--set key.path=value`` to the raw scenario data in place; each override's
    value is parsed as YAML (safely) and located as ``--set[i]`` in messages. Every bad
    override is reported, not only the first."""
    problems = _apply_all(data, doc, overrides)
    if problems:
        raise InputError(problems)


def _apply_all(data: dict[str, Any], doc: Document, overrides: list[str],
               where: Sequence[Location | None] | None = None) -> list[Problem]:
    """Apply every override that can be applied; the problems of the others. Override ``i``
    is located at ``where[i]`` when that is given (a sweep's point: at its --vary value),
    else as ``--set[i]`` at the column of the part of the key or of the value a problem is
    about."""
    problems: list[Problem] = []
    for i, item in enumerate(overrides):
        given = where[i] if where is not None else None
        try:
            _apply_override(data, doc, item, given or Location(f"--set[{i}]", 1, 1),
                            exact=given is None)
        except InputError as exc:
            problems += exc.problems
    return problems


def _apply_override(data: dict[str, Any], doc: Document, item: str, where: Location, *,
                    exact: bool) -> None:
    """Apply one override; ``exact``: locate its key's parts and value at their columns in
    ``item`` (else all at ``where``)."""
    try:
        o = _parse_override(item, where)
    except InputError as exc:
        if exact:
            raise
        raise InputError([Problem(where, p.message, p.expected) for p in exc.problems]) from None
    parts = o.parts
    path = tuple(int(p) if p.isdigit() else p for p in parts)

    def part_at(depth: int) -> Location:
        return Location(where.path, 1, o.part_cols[depth]) if exact else where

    def created(depth: int) -> None:
        # a part the override made is the override's, so a problem there is located at it
        sub = path[:depth + 1]
        for table in (doc.values, doc.keys):
            table[sub] = part_at(depth)

    def fail(depth: int, what: str) -> None:
        raise InputError([Problem(part_at(depth), f"{'.'.join(parts[:depth + 1])} {what}",
                                  "a path to a scenario value")])

    def new(depth: int) -> Any:  # a number after a missing key makes a list
        return [] if depth + 1 < len(parts) and parts[depth + 1].isdigit() else {}

    value = o.value.data
    cur: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(cur, list):
            if not part.isdigit():
                fail(depth - 1, "is a list (a number picks an entry)")
            index = int(part)
            if index > len(cur):
                raise InputError([Problem(
                    part_at(depth), f"{'.'.join(parts[:depth])} has {len(cur)} "
                    f"entr{'y' if len(cur) == 1 else 'ies'}, so there is no entry {index}",
                    f"an entry from 0 to {len(cur)}; {len(cur)} adds one")])
            if index == len(cur):
                cur.append(None if last else new(depth))
                created(depth)
            if last:
                cur[index] = value
            else:
                cur = cur[index]
            continue
        if not isinstance(cur, dict):
            fail(depth - 1, "is not a mapping")
        if last:
            cur[part] = value
        else:
            if part not in cur:
                cur[part] = new(depth)
                created(depth)
            cur = cur[part]
    # the value no longer comes from the file: neither does anything inside it
    for table in (doc.values, doc.keys, doc.spans, doc.quote):
        for p in [p for p in table if p[:len(path)] == path and len(p) > len(path)]:
            del table[p]
    doc.spans.pop(path, None)
    doc.quote.pop(path, None)
    doc.keys[path] = part_at(len(parts) - 1)
    if not exact:
        doc.values[path] = where
        return
    # inside a structured value (``shocks=[{at_month: 3, kind: x}]``), each value and key at
    # its column in the option
    for sub, loc in o.value.values.items():
        doc.values[path + sub] = loc
    for sub, loc in o.value.keys.items():
        doc.keys[path + sub] = loc
    for sub, n in o.value.quote.items():
        doc.quote[path + sub] = n


def _drop_former_strategy_settings(data: Any, doc: Document) -> None:
    """An override that switches the strategy (``--set strategy.name=tiered`` on a file that
    runs value_based with ``by: clv``) leaves the file's settings of its former strategy
    behind. They were right for the strategy the file named, and the user has just chosen
    another, so they are dropped rather than refused (a setting of another strategy that the
    file gives next to its own name, or that an override gives, is still refused:
    ``models.strategy_checks``)."""
    st = data.get("strategy") if isinstance(data, dict) else None
    name_at = doc.values.get(("strategy", "name"))
    if not isinstance(st, dict) or name_at is None or name_at.path == doc.path:
        return  # the name is the file's own (or the whole block was replaced)
    for key, owner in m.STRATEGY_SETTINGS.items():
        at = doc.values.get(("strategy", key))
        if key in st and owner != st.get("name") and at is not None and at.path == doc.path:
            del st[key]


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                  where: Sequence[Location | None] | None = None) -> ScenarioSpec:
    """Load a scenario and every rule file it names; raise :class:`InputError` with all the
    problems found in all of them.

    ``overrides`` (``key.path=value``) change the scenario's values before it is checked;
    a problem with override ``i`` is located at ``where[i]`` (default ``--set[i]``: a
    sweep's points locate theirs at the ``--vary`` value they come from).

    The rule and data files are read even when the scenario itself has problems (wherever
    their paths can be read), so one run of ``kamsim validate`` shows everything to fix."""
    p = Path(path)
    doc = _scenario_doc(p, str(path))
    kind, problems = _kind_of(doc)
    if problems:
        raise InputError(doc.problems + problems)
    if kind != "scenario":
        raise InputError([*doc.problems, Problem(doc.locate(("kind",)),
                                                 f"this is a {kind!r} file",
                                                 "a scenario file (kind: scenario)")])
    data = doc.data
    problems = doc.problems + _apply_all(data, doc, list(overrides), where)
    _drop_former_strategy_settings(data, doc)
    scenario, probs, bad = _validate(doc, m.Scenario)
    problems += probs

    def ref(*key: str) -> str | None:
        """A file path the scenario gives at ``key`` (None if absent or broken there)."""
        value = _at(data, *key)
        return value if isinstance(value, str) and not _touches(key, bad) else None

    root = _workspace_root(p.resolve())
    here = p.resolve().parent
    rules: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    place = None
    rule_docs: dict[str, Document] = {}  # the rule files whose schema is valid
    # every rule file of the right kind, with its paths that have a schema error: its
    # expressions are checked once, when the names of every file are known
    to_check: dict[str, tuple[Path, Document, set[tuple[Any, ...]]]] = {}
    levels: list[str] | None = None  # the service levels' names, wherever they can be read
    service_doc: Document | None = None  # the service-levels file, even with problems
    wanted = {"tiering": "tiering", "service": "service_levels", "stages": "stages",
              "stakeholders": "stakeholders"}
    for slot, kind_name in wanted.items():
        rel = ref("rules", slot)
        if rel is None:
            continue
        target, probs = _resolve_ref(doc, ("rules", slot), rel, here, root)
        problems += probs
        if target is None:
            continue
        shown = str(Path(path).parent / rel)
        model, rule_doc, probs, bad_rule, digest = _once(
            "rules", target, (kind_name, shown), partial(_rule_file_hashed, target, kind_name,
                                                         shown))
        problems += probs
        if slot == "service":
            levels = _key_names(rule_doc, bad_rule, "levels")
            service_doc = rule_doc
        if isinstance(rule_doc.data, dict) and rule_doc.data.get("kind") == kind_name:
            to_check[kind_name] = (target, rule_doc, bad_rule)
        if model is None:
            continue
        rules[slot] = model
        rule_docs[kind_name] = rule_doc
        if slot == "tiering":
            place = table_place(rule_doc)
        hashes[shown] = digest
    imported = None
    rel = ref("portfolio", "import", "path")
    if rel is not None:
        target, probs = _resolve_ref(doc, ("portfolio", "import", "path"), rel, here, root)
        problems += probs
        spec = _import_spec(scenario, _at(data, "portfolio", "import"))
        if target is not None and spec is not None:
            from kamsim.portfolio import read_portfolio_csv

            shown = str(Path(path).parent / rel)
            segments = tuple(rules["stakeholders"].units) if "stakeholders" in rules else ()
            rows = partial(read_portfolio_csv, target, spec, display=shown,
                           segments=list(segments))
            try:
                imported, hashes[shown] = _once(
                    "portfolio", target, (spec.model_dump_json(), shown, segments),
                    partial(_hashed, rows))
            except InputError as exc:
                problems += exc.problems
    contacts = None
    rel = ref("contacts")
    if rel is not None:
        target, probs = _resolve_ref(doc, ("contacts",), rel, here, root)
        problems += probs
        if target is not None and "stakeholders" in rules:
            shown = str(Path(path).parent / rel)
            roles = tuple(rules["stakeholders"].roles)
            # the accounts it is checked against, named without listing them: an imported
            # table is the one this reading keeps (so its identity names it), a generated
            # portfolio's ids follow from its size
            gen = scenario.portfolio.generate if isinstance(scenario, m.Scenario) else None
            accounts = (("import", id(imported)) if imported is not None
                        else ("generate", gen.accounts) if gen is not None else None)
            people = partial(_contacts, target, roles, shown, scenario, imported)
            try:
                contacts, hashes[shown] = _once("contacts", target, (roles, shown, accounts),
                                                partial(_hashed, people))
            except InputError as exc:
                problems += exc.problems
    problems += _cross_check(doc, ref("strategy", "level"), rules, levels,
                             {**rule_docs, **({"service_levels": service_doc}
                                              if service_doc is not None else {})})
    if "stakeholders" in to_check:
        # the stakeholders file's names checked against the portfolio, read from the raw file
        # (where its explicit maps and templates are), so that its other problems do not
        # hide these: one round of `kamsim validate` shows them all
        _, people_doc, bad_people = to_check["stakeholders"]
        problems += _accounts_in_portfolio(people_doc,
                                           _key_names(people_doc, bad_people, "accounts"),
                                           _generated_count(data, bad), imported, str(path))
        problems += _units_for_segments(people_doc, _key_names(people_doc, bad_people, "units"),
                                        data, bad, str(path))
    # the names a rule compares `tier`, `stage`, `segment`, ... with, now that every file is
    # read: a stages file may name a tier, a tiering file a stage. Each expression is
    # compiled once, here (with a file's own names where its schema has problems, as
    # load_rule_file checks a lone file), not once alone and again with the others' names
    known = known_values(rules=rules, scenario=scenario)
    problems += check_expressions("scenario", data, doc, skip=bad, values=known)
    for kind_name, (target, rule_doc, bad_rule) in to_check.items():
        values = {**known_values(kind_name, rule_doc.data), **known}
        # (the same file with the same names, as a sweep's points mostly are: checked once)
        problems += _once("expressions", target, (kind_name, rule_doc.path, *(
            (k, tuple(v)) for k, v in sorted(values.items()))), partial(
                check_expressions, kind_name, rule_doc.data, rule_doc, skip=bad_rule,
                values=values))
    if problems or scenario is None:
        raise InputError(dict.fromkeys(problems))
    assert isinstance(scenario, m.Scenario)
    return ScenarioSpec(scenario=scenario, tiering=rules["tiering"], service=rules["service"],
                        stages=rules["stages"], stakeholders=rules["stakeholders"],
                        path=str(path), root=str(root), hashes=hashes,
                        overrides=tuple(overrides), portfolio_rows=imported,
                        contacts=contacts, table_place=place)


def _rule_file_hashed(path: Path, kind: str, shown: str
                      ) -> tuple[Any, Document, list[Problem], set[tuple[Any, ...]], str | None]:
    """:func:`_read_rule_file` but its expressions, and the file's hash when it has no
    problems so far (the hash of a file that loaded is recorded with the run). The hash is
    of the text parsed (UTF-8, as read: the same bytes as the file's), not of a second read
    of the file, which might find another version of it."""
    model, doc, problems, bad = _read_rule_file(path, kind, shown, expressions=False)
    return model, doc, problems, bad, None if problems else hashlib.sha256(
        doc.source.encode("utf-8")).hexdigest()


def _contacts(path: Path, roles: Sequence[str], shown: str, scenario: BaseModel | None,
              imported: Any, *, on_read: Callable[[bytes], None]) -> Any:
    """The scenario's contact export, checked against its starting accounts."""
    from kamsim.dmu import read_contacts_csv

    return read_contacts_csv(path, list(roles), display=shown,
                             accounts=_starting_ids(scenario, imported), on_read=on_read)


def _scenario_doc(p: Path, shown: str) -> Document:
    """The scenario file's document, for this load to change (its overrides are applied to
    it in place): a copy of the one :func:`reading_once` keeps, if in such a block."""
    if _READ.get() is None:
        return load_yaml(p, display=shown, keep_going=True)
    import copy

    return copy.deepcopy(_once("scenario", p, (shown,),
                               lambda: load_yaml(p, display=shown, keep_going=True)))


def _starting_ids(scenario: BaseModel | None, imported: Any) -> set[str] | None:
    """The starting portfolio's account ids a contact export is checked against (None when
    the portfolio has problems of its own: its ids are not known)."""
    from kamsim.portfolio import START_PREFIX, numbered_ids

    if imported is not None:
        return set(map(str, imported.account_id.tolist()))
    if isinstance(scenario, m.Scenario) and scenario.portfolio.generate is not None:
        return set(numbered_ids(START_PREFIX, scenario.portfolio.generate.accounts).tolist())
    return None


def _import_spec(scenario: BaseModel | None, raw: Any) -> m.PortfolioImport | None:
    """How to read an imported portfolio: from the valid scenario, else from the raw
    ``portfolio.import`` part if that part alone is valid (its own problems are already
    reported by the scenario's schema check)."""
    if isinstance(scenario, m.Scenario):
        return scenario.portfolio.import_
    try:
        return m.PortfolioImport.model_validate(raw)
    except ValidationError:
        return None


def _key_names(doc: Document, bad: set[tuple[Any, ...]], key: str) -> list[str] | None:
    """The names a rule file gives under ``key`` (a service-levels file's levels, a
    stakeholders file's roles, units or accounts), read from the raw file so that a problem
    elsewhere in it, or inside one of the entries (a bad currency, an infinite influence),
    does not hide the checks that need only the names; None if ``key`` is not a mapping. A
    name with a problem of its own (not a valid name) is left out."""
    if () in bad or not isinstance(doc.data, dict):
        return None
    entries = doc.data.get(key)
    if not isinstance(entries, dict) or (key,) in bad:
        return None
    return [k for k in entries if isinstance(k, str) and (key, k, "[key]") not in bad]


def _generated_count(data: Any, bad: set[tuple[Any, ...]]) -> int | None:
    """How many accounts the scenario's portfolio generates, read from the raw data (so a
    problem elsewhere in the scenario does not hide the check of the explicit maps); None if
    it imports its portfolio or the count has a problem of its own."""
    pf = _at(data, "portfolio")
    gen = pf.get("generate") if isinstance(pf, dict) and "import" not in pf else None
    if not isinstance(gen, dict) or _touches(("portfolio", "generate", "accounts"), bad):
        return None
    count = gen.get("accounts", m.PortfolioGenerate.model_fields["accounts"].default)
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _accounts_in_portfolio(doc: Document, accounts: list[str] | None, generated: int | None,
                           imported: Any, path: str) -> list[Problem]:
    """An explicit map (`accounts:` of the stakeholders file, whose ids are ``accounts``) for
    an account the scenario's portfolio does not have would be silently unused: a problem at
    its id. A generated portfolio's ids are known from its size
    (kamsim.portfolio.numbered_index) without drawing it."""
    if not accounts or (generated is None and imported is None):
        return []
    if generated is not None:
        from kamsim.portfolio import START_PREFIX, numbered_id, numbered_index

        unknown = [acc for acc in accounts
                   if numbered_index(START_PREFIX, generated, acc) is None]
        first = numbered_id(START_PREFIX, 1, generated)
        last = numbered_id(START_PREFIX, generated, generated)
        expected = (f"an id of the portfolio's {generated} generated accounts, {first} to "
                    f"{last}")
    else:
        ids = {str(a) for a in imported.account_id}
        unknown = [acc for acc in accounts if acc not in ids]
        expected = "an account_id of the imported portfolio"
    return [Problem(doc.locate(("accounts", acc), key=True),
                    f"account {acc!r} is not in the portfolio of {path}, so its map would "
                    "never be used", expected)
            for acc in unknown]


def _units_for_segments(doc: Document, units: list[str] | None, data: Any,
                        bad: set[tuple[Any, ...]], path: str) -> list[Problem]:
    """A unit template (other than `default`) that names no segment of a generated
    portfolio but is close to one of its segments with no template of its own (`corprate`
    for `corporate`) is a likely misspelling: that segment's accounts would get the default
    unit without a word, so it is a problem at the template's key. Any other template for a
    segment the portfolio lacks is left alone: a stakeholders file is shared by scenarios,
    and one with fewer segments (or `--set portfolio.generate.segments=...`) does not use
    them all. The segments are read from the raw scenario, so a problem elsewhere in it does
    not hide this one. ``units``: the stakeholders file's template names (None: not known).
    (An imported portfolio's segments are the CSV's: checked where it is read.)"""
    if not units:
        return []
    pf = _at(data, "portfolio")
    gen = pf.get("generate") if isinstance(pf, dict) and "import" not in pf else None
    if not isinstance(gen, dict) or _touches(("portfolio", "generate", "segments"), bad):
        return []
    segments = gen.get("segments")
    if segments is None:
        segments = m.PortfolioGenerate.model_fields["segments"].get_default(
            call_default_factory=True)
    if not isinstance(segments, dict):
        return []
    names = [k for k in segments if isinstance(k, str)]
    untemplated = [n for n in names if n not in units]  # get the default unit
    out = []
    for unit in units:
        if unit == "default" or unit in names:
            continue
        hint = did_you_mean(unit, untemplated)
        if not hint:  # a template for a segment this scenario does not have
            continue
        out.append(Problem(doc.locate(("units", unit), key=True),
                           f"unit template {unit!r} names no segment of the portfolio of "
                           f"{path} but is close to one with no template of its own, whose "
                           "accounts would get the default unit",
                           f"{hint}one of its segments: {', '.join(names)}, or `default`"))
    return out


def _cross_check(doc: Document, level: str | None, rules: dict[str, Any],
                 levels: list[str] | None, docs: dict[str, Document] | None = None
                 ) -> list[Problem]:
    """References between files: every tier has a service level and no level names an
    unknown tier; the `equal` strategy's level exists. Each check runs when the files it
    needs can be read: the tiering file without problems of its own (its tiers are the
    reference), the service levels' names wherever they can be read (``levels``).

    A level with no tier is reported at its key in the service-level file and a tier with
    no level at that file's `levels` key, where the fix goes, naming the tiering file they
    were compared with (``docs``: the rule files by kind; without them, at the scenario's
    `rules.service`)."""
    out: list[Problem] = []
    if "tiering" not in rules:
        return out
    tiers = list(rules["tiering"].tiers)
    service = (docs or {}).get("service_levels")
    tiering = (docs or {}).get("tiering")
    of = f"the tiering file {tiering.path}" if tiering is not None else "the tiering file"
    if levels is not None:
        missing = [t for t in tiers if t not in levels]
        if missing:
            where = (service.locate(("levels",), key=True) if service is not None
                     else doc.locate(("rules", "service")))
            out.append(Problem(where,
                               f"service levels missing for tier(s) {', '.join(missing)}",
                               f"a service level for every tier of {of}"))
        for name in levels:
            if name not in tiers:
                hint = did_you_mean(name, tiers)
                where = (service.locate(("levels", name), key=True) if service is not None
                         else doc.locate(("rules", "service")))
                out.append(Problem(where, f"service level {name!r} names no tier of {of}",
                                   f"{hint}one of: {', '.join(tiers)}"))
    if level is not None and level not in tiers:
        hint = did_you_mean(level, tiers)
        out.append(Problem(doc.locate(("strategy", "level")),
                           f"unknown service level {level!r}",
                           f"{hint}one of: {', '.join(tiers)}"))
    return out


def _csv_kind(path: Path) -> str | None:
    """``contacts`` or ``portfolio`` by the CSV's header (a ``person`` column makes a contact
    export; else an ``account_id`` column a portfolio), None if neither. A header that cannot
    be read counts as a portfolio, whose reader reports why at ``file:1:1``; a file that
    cannot be opened (no permission, a folder) is reported here, the same way."""
    import csv

    from kamsim.csvtext import norm_name

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh))
    except (StopIteration, csv.Error, UnicodeDecodeError):
        return "portfolio"
    except OSError as exc:
        raise InputError([Problem(Location(str(path), 1, 1),
                                  f"cannot read file: {exc.strerror or exc}",
                                  "an existing, readable file")]) from None
    names = {norm_name(h) for h in header}
    return "contacts" if "person" in names else "portfolio" if "account_id" in names else None


def load_any(path: str | Path) -> tuple[str, Any]:
    """Validate any kamsim file by its ``kind``: a scenario (with its rule files), one rule
    file, a lesson, or a CSV (a portfolio or a contact export, told apart by the header).
    Returns ``(kind, model)``."""
    if Path(path).suffix.lower() == ".csv":
        if not Path(path).is_file():
            raise InputError([Problem(Location(str(path), 1, 1), "cannot read file",
                                      "an existing, readable file")])
        from kamsim.csvtext import check_csv_text

        try:  # a workbook or ';' between fields is said as such, not "which kind of CSV"
            check_csv_text(path, str(path))
        except OSError:
            pass  # _csv_kind words it
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
    # (its duplicate keys are reported by the loader of its kind, with the file's other
    # problems)
    doc = load_yaml(path, display=str(path), keep_going=True)
    kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
    if isinstance(doc.data, dict) and (kind == "lesson" or (
            str(path).endswith(".lesson.yaml") and not (isinstance(kind, str)
                                                        and kind in ALL_KINDS))):
        # a trainer's lesson: its loader checks the scenario and every variant (a lesson file
        # with a missing or misspelt `kind` is still checked whole, as `kamsim lesson list`
        # does)
        from kamsim.lessons import load_lesson

        return "lesson", load_lesson(path)
    kind, problems = _kind_of(doc)
    if problems:
        raise InputError(doc.problems + problems)
    assert kind is not None
    if kind == "scenario":
        return kind, load_scenario(path)
    model, _ = load_rule_file(path, kind, display=str(path))
    return kind, model


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
