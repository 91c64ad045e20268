"""Loading: every shipped file validates, positions are exact for nested values and inside
expressions, --set overrides are applied and validated, and the JSON Schemas accept every
shipped file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kamsim.errors import InputError
from kamsim.examples import copy_examples
from kamsim.spec.load import load_any, load_rule_file, load_scenario
from kamsim.spec.yamlpos import load_yaml_text

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "rules").glob("*.yaml"))
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted(
    (ROOT / "scenarios" / "lessons").glob("*.yaml"))
SHIPPED = RULES + [p for p in SCENARIOS if not p.name.endswith(".lesson.yaml")] + sorted(
    (ROOT / "scenarios" / "lessons" / "maps").glob("*.yaml"))
LESSONS = sorted((ROOT / "scenarios" / "lessons").glob("*.lesson.yaml"))
SMALL = ["portfolio.generate.accounts=200", "horizon_months=24", "replications=3"]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_file_validates(path: Path) -> None:
    kind, model = load_any(path)
    assert kind == (model.scenario.kind if kind == "scenario" else model.kind)


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_files_validate(path: Path) -> None:
    """`kamsim validate scenarios/lessons/*.yaml` passes: lesson files (kind: lesson) are
    checked by the trainer's loader, scenario and variants included."""
    kind, _ = load_any(path)
    assert kind in ("lesson", "scenario", "stakeholders")


def test_shipped_files_cover_every_rule_kind() -> None:
    kinds = {load_any(p)[0] for p in SHIPPED}
    assert kinds == {"scenario", "tiering", "service_levels", "stages", "stakeholders"}


# ------------------------------------------------------------------ positions


def _problems(text: str, kind: str | None = None) -> list[str]:
    """Validate YAML text as a rule file (through a temporary file) and return its lines."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "f.yaml"
        f.write_text(text)
        with pytest.raises(InputError) as exc:
            load_rule_file(f, kind, display="f.yaml")
    return [p.format() for p in exc.value.problems]


def test_locations_of_nested_values() -> None:
    doc = load_yaml_text("a:\n  b:\n    - x: 1\n    - {y: 'two', z: [3, 4]}\n", "t.yaml")
    assert str(doc.locate(("a", "b", 0, "x"))) == "t.yaml:3:10"
    assert str(doc.locate(("a", "b", 0, "x"), key=True)) == "t.yaml:3:7"
    assert str(doc.locate(("a", "b", 1, "y"))) == "t.yaml:4:11"
    assert str(doc.locate(("a", "b", 1, "z", 1))) == "t.yaml:4:25"
    # an unknown path falls back to the nearest located ancestor
    assert str(doc.locate(("a", "b", 1, "nope"))) == "t.yaml:4:7"


@pytest.mark.parametrize("levels", [33, 64, 65, 600, 100_000])
def test_nesting_too_deep_is_one_located_line_at_any_depth(levels: int) -> None:
    """PyYAML's composer recurses a level at a time: from ~500 levels (a 1 KB file) it raised
    RecursionError before the depth was checked. Now the same line at any depth, for lists
    and mappings; with the document's other problems up to twice the limit, alone beyond (the
    file is not read on: see yamlpos._ShallowLoader)."""
    deep_list = "[" * levels + "]" * levels
    deep_map = "{a: " * levels + "1" + "}" * levels
    # (w is an alias of an anchor inside the part past the limit: it still resolves)
    text = f"x: {deep_list}\ny: !!python/name:os.system ''\nz: {deep_map}\nw: *far\n"
    text = text.replace("[]", "[&far 1]")
    with pytest.raises(InputError) as exc:
        load_yaml_text(text, "t.yaml")
    lines = [p.format() for p in exc.value.problems]
    first = "t.yaml:1:36: nesting is too deep (at most 32 levels)"
    if levels > 64:
        assert lines == [first]
    else:
        assert lines == [
            first,
            "t.yaml:2:4: tag 'tag:yaml.org,2002:python/name:os.system' is not allowed "
            "(plain strings, numbers and booleans)",
            "t.yaml:3:132: nesting is too deep (at most 32 levels)",
        ]
    with pytest.raises(InputError) as exc:
        load_yaml_text(f"z: {deep_map}\n", "t.yaml")
    assert [p.format() for p in exc.value.problems] == [
        "t.yaml:1:132: nesting is too deep (at most 32 levels)"]


STAGES = "kamsim: 1\nkind: stages\nstages:\n  - name: a\n"
#: a stage above `a`, so an `up_when` of `a` has somewhere to go (on the top stage it is refused)
TOP = "  - name: z\n"


@pytest.mark.parametrize("scalar, col", [
    ("trust > 0.5 and stgae == 'x'", 30),           # plain
    ('"trust > 0.5 and stgae == \'x\'"', 31),       # double-quoted: one more for the quote
    ("'trust > 0.5 and stgae == ''x'''", 31),       # single-quoted
    ("  trust > 0.5 and stgae == 'x'", 32),         # YAML drops the leading blanks
])
def test_expression_columns_plain_and_quoted(scalar: str, col: int) -> None:
    lines = _problems(STAGES + f"    up_when: {scalar}\n" + TOP)
    assert len(lines) == 1
    assert lines[0].startswith(f"f.yaml:5:{col}: unknown name 'stgae'"), lines


def test_expression_columns_in_block_scalars() -> None:
    text = STAGES + "    up_when: >\n      trust > 0.5\n      and stgae == 'x'\n" + TOP
    assert _problems(text)[0].startswith("f.yaml:7:11: unknown name 'stgae'")
    text = STAGES + "    up_when: |-\n      trust > 0.5 and\n        stgae == 'x'\n" + TOP
    assert _problems(text)[0].startswith("f.yaml:7:9: unknown name 'stgae'")


def test_two_problems_in_one_expression_are_both_located() -> None:
    lines = _problems(STAGES + "    up_when: trst > 0.5 and covrage > 1\n" + TOP)
    assert [ln.split(": ")[0] for ln in lines] == ["f.yaml:5:14", "f.yaml:5:29"]


def test_kind_mismatch_is_located() -> None:
    lines = _problems(STAGES, kind="tiering")
    assert lines == ["f.yaml:2:7: this file is a 'stages' file (a 'tiering' file)"]


# ------------------------------------------------------------------ overrides


def test_overrides_are_applied() -> None:
    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml",
                         [*SMALL, "market.price_gap=0.2", "capacity.support.agents=3",
                          "strategy.name=equal", "strategy.level=important"])
    sc = spec.scenario
    assert sc.portfolio.generate is not None and sc.portfolio.generate.accounts == 200
    assert (sc.horizon_months, sc.replications) == (24, 3)
    assert sc.market.price_gap == 0.2 and sc.capacity.support.agents == 3
    assert (sc.strategy.name, sc.strategy.level) == ("equal", "important")
    assert spec.overrides == (*SMALL, "market.price_gap=0.2", "capacity.support.agents=3",
                              "strategy.name=equal", "strategy.level=important")
    assert spec.resolved()["overrides"] == list(spec.overrides)


def test_override_values_are_yaml() -> None:
    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml",
                         [*SMALL, "shocks=[{at_month: 3, kind: recession}]", "event_log=false"])
    assert spec.scenario.shocks[0].kind == "recession"
    assert spec.scenario.event_log is False


def test_overrides_are_validated_and_located() -> None:
    with pytest.raises(InputError) as exc:
        load_scenario(ROOT / "scenarios" / "baseline.yaml",
                      ["replications=0", "confidence=2", "strategy.level=gold"])
    text = str(exc.value)
    assert "--set[0]:1:14: replications:" in text
    assert "--set[1]:1:12: confidence:" in text


def test_base60_and_octal_numbers_are_refused_at_their_place() -> None:
    """YAML 1.1 reads 1:30 as the base-60 number 90 and 012 as the octal 10: a time or a
    zero-padded figure silently became another number, in a file and in --set alike."""
    with pytest.raises(InputError) as exc:
        load_yaml_text("a: 1:30\nb: [012, -20:30.5]\nc: '012'\nd: 0\ne: 10\nf: 0.5\n",
                       "t.yaml")
    assert [p.format() for p in exc.value.problems] == [
        "t.yaml:1:4: '1:30' would be read as the base-60 number 90 (a decimal number, or "
        "quoted text)",
        "t.yaml:2:5: '012' would be read as the octal number 10 (a decimal number, or quoted "
        "text)",
        "t.yaml:2:10: '-20:30.5' would be read as the base-60 number -1230.5 (a decimal "
        "number, or quoted text)"]
    # quoted, it is text; 0, 10, 0.5 are what they say
    assert load_yaml_text("c: '012'\nd: 0\ne: 10\nf: 0.5\ng: 00\n", "t.yaml").data == {
        "c": "012", "d": 0, "e": 10, "f": 0.5, "g": 0}
    with pytest.raises(InputError) as exc:
        load_scenario(ROOT / "scenarios" / "baseline.yaml", ["horizon_months=20:30"])
    assert exc.value.problems[0].format().startswith(
        "--set[0]:1:16: '20:30' would be read as the base-60 number 1230")


def test_override_does_not_change_the_file() -> None:
    path = ROOT / "scenarios" / "baseline.yaml"
    before = path.read_bytes()
    load_scenario(path, SMALL)
    assert path.read_bytes() == before


# ------------------------------------------------------------------ JSON Schemas


def test_schema_command_writes_valid_schemas(tmp_path: Path) -> None:
    import jsonschema
    import yaml
    from click.testing import CliRunner

    from kamsim.cli.main import cli

    out = tmp_path / "schemas"
    result = CliRunner().invoke(cli, ["schema", "--out", str(out)])
    assert result.exit_code == 0, result.output
    kinds = {"scenario", "tiering", "service_levels", "stages", "stakeholders", "lesson"}
    assert {p.name for p in out.iterdir()} == {f"{k}.schema.json" for k in kinds}
    schemas = {k: json.loads((out / f"{k}.schema.json").read_text()) for k in kinds}
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for path in SHIPPED + LESSONS:  # lessons too: a trainer's editor checks them as well
        data = yaml.safe_load(path.read_text())
        jsonschema.validate(data, schemas[data["kind"]],
                            cls=jsonschema.Draft202012Validator)


def test_schema_rejects_an_unknown_key() -> None:
    import jsonschema
    import yaml

    from kamsim.spec.schema import json_schemas

    data = yaml.safe_load((ROOT / "rules" / "stages.yaml").read_text())
    data["stages"][0]["min_dwel_months"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schemas()["stages"])


def test_schema_to_stdout_for_one_kind() -> None:
    from click.testing import CliRunner

    from kamsim.cli.main import cli

    result = CliRunner().invoke(cli, ["schema", "--kind", "tiering"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "kamsim tiering file"


def test_override_numbers_start_and_extend_lists() -> None:
    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml",
                         ["shocks.0.at_month=3", "shocks.0.kind=recession",
                          "shocks.1={at_month: 5, kind: price_war}"])
    assert [(s.at_month, s.kind) for s in spec.scenario.shocks] == [
        (3, "recession"), (5, "price_war")]


# ------------------------------------------------------------------ names in string literals


def test_a_lone_rule_file_checks_the_names_it_declares() -> None:
    text = STAGES + "    up_when: stage == 'b'\n  - name: b\n    down_when: \"stage != 'bb'\"\n"
    assert _problems(text) == [
        "f.yaml:7:26: unknown stage 'bb'; did you mean 'b'? (one of: a, b, uncoupled)"]
    tiering = ("kamsim: 1\nkind: tiering\ntiers: [key, general]\n"
               "indicators: {volume: {expr: revenue, weight: 1}}\n"
               "table:\n  rows:\n    - {when: \"tier == 'kye' or quadrant == 'protekt'\", "
               "tier: key}\n  default: general\n")
    # (the tiering file may not read tier or quadrant at all, since the tiering works them
    # out: both problems of each name are told, at once)
    assert _problems(tiering) == [
        "f.yaml:7:15: tier is worked out by the tiering itself: the first tiering has no tier "
        "to read (the portfolio fields and the other state fields)",
        "f.yaml:7:23: unknown tier 'kye'; did you mean 'key'? (one of: key, general)",
        "f.yaml:7:32: quadrant is worked out by the tiering itself: the first tiering has no "
        "quadrant to read (the portfolio fields and the other state fields)",
        "f.yaml:7:44: unknown quadrant 'protekt'; did you mean 'protect'? "
        "(one of: protect, manage_risk, cultivate, reduce)"]


def test_a_scenario_checks_names_across_its_files(tmp_path: Path) -> None:
    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    stages = tmp_path / "rules" / "stages.yaml"
    text = stages.read_text()
    first = 'up_when: "trust >= 0.45 and coverage >= 0.2"'
    assert first in text
    stages.write_text(text.replace(first, first[:-1] + " and tier != 'kye'\""))
    load_rule_file(stages)  # alone it cannot know the tiers
    with pytest.raises(InputError) as exc:
        load_scenario(tmp_path / "scenarios" / "baseline.yaml",
                      ["strategy.name=custom", "strategy.priority=if(segment == 'Enterprise', "
                       "1, 0) + if(industry == 'retial', 1, 0)"])
    lines = [p.format() for p in exc.value.problems]
    assert lines[0] == ("--set[1]:1:33: unknown segment 'Enterprise'; did you mean "
                        "'enterprise'? (one of: enterprise, midmarket, small)")
    assert lines[1].startswith("--set[1]:1:70: unknown industry 'retial'; did you mean 'retail'?")
    assert lines[2].endswith("stages.yaml:11:61: unknown tier 'kye'; did you mean 'key'? "
                             "(one of: key, important, general)")
    assert len(lines) == 3


def test_imported_segments_are_taken_as_written() -> None:
    """An export's segments are whatever the CRM holds: not guessed at when loading."""
    spec = load_scenario(ROOT / "scenarios" / "crm_import.yaml",
                         ["strategy.name=custom", "strategy.priority=if(segment == 'Gold', 1, 0)"])
    assert spec.scenario.strategy.priority == "if(segment == 'Gold', 1, 0)"


def test_an_unquoted_yaml_bool_or_number_is_that_expression(tmp_path: Path) -> None:
    """YAML reads `when: true` as a bool: it was refused as 'Input should be a valid
    string'; the rule language means the same by it, so it is the expression `true`."""
    stages = STAGES + "    up_when: yes\n  - name: b\n    down_when: false\n"
    path = tmp_path / "s.yaml"
    path.write_text(stages)
    rules, _ = load_rule_file(path)
    assert (rules.stages[1].down_when, rules.stages[0].up_when) == ("false", "true")
    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml",
                         ["strategy.name=custom", "strategy.priority=0"])
    assert spec.scenario.strategy.priority == "0"
    # of the wrong type, it is still refused, at the value
    assert _problems(STAGES + "    up_when: 5\n" + TOP) == [
        "f.yaml:5:14: expected a true/false condition, got a number"]
    # and an editor checking the file against the JSON Schema does not flag it either
    import jsonschema

    from kamsim.spec.schema import json_schemas

    jsonschema.validate(load_yaml_text(stages, "s.yaml").data, json_schemas()["stages"],
                        cls=jsonschema.Draft202012Validator)


def test_a_service_level_without_its_tier_is_reported_in_the_service_file(tmp_path: Path
                                                                        ) -> None:
    """Where the fix goes: at the level's key and the `levels` key of service_levels.yaml
    (both were at the scenario's `service:` line)."""
    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    service = tmp_path / "rules" / "service_levels.yaml"
    text = service.read_text()
    assert text.count("\n  important:") == 1
    service.write_text(text.replace("\n  important:", "\n  importent:"))
    with pytest.raises(InputError) as exc:
        load_scenario(tmp_path / "scenarios" / "baseline.yaml")
    lines = text.splitlines()
    levels = next(i for i, ln in enumerate(lines) if ln.startswith("levels:")) + 1
    level = next(i for i, ln in enumerate(lines) if ln.startswith("  important:")) + 1
    shown = f"{tmp_path}/scenarios/../rules"
    assert [p.format() for p in exc.value.problems] == [
        f"{shown}/service_levels.yaml:{levels}:1: service levels missing for tier(s) "
        f"important (a service level for every tier of the tiering file "
        f"{shown}/tiering.yaml)",
        f"{shown}/service_levels.yaml:{level}:3: service level 'importent' names no tier of "
        f"the tiering file {shown}/tiering.yaml (did you mean 'important'? one "
        f"of: key, important, general)"]


def test_explicit_map_of_an_account_the_portfolio_lacks_is_located(tmp_path: Path) -> None:
    """A stakeholders file's map for an account the scenario's portfolio does not have (here
    after --set makes the portfolio smaller, so its ids are A001...) would never be used: a
    problem at the map's id when the scenario loads, not silence."""
    (tmp_path / "rules").mkdir()
    for p in RULES:
        (tmp_path / "rules" / p.name).write_text(p.read_text())
    people = tmp_path / "rules" / "stakeholders.yaml"
    text = people.read_text() + (
        "accounts:\n  A0007:\n    people: [{id: boss, role: economic_buyer}]\n")
    people.write_text(text)
    line = text.splitlines().index("  A0007:") + 1
    scenario = tmp_path / "scenarios" / "s.yaml"
    scenario.parent.mkdir()
    scenario.write_text((ROOT / "scenarios" / "baseline.yaml").read_text())
    assert "A0007" in load_scenario(scenario).stakeholders.accounts  # 2000 accounts: A0007
    with pytest.raises(InputError) as err:
        load_scenario(scenario, ["portfolio.generate.accounts=500"])
    (problem,) = err.value.problems
    assert (problem.loc.line, problem.loc.col) == (line, 3)
    assert problem.loc.path.endswith("rules/stakeholders.yaml")
    assert problem.message.startswith("account 'A0007' is not in the portfolio")
    assert problem.expected is not None and "A001 to A500" in problem.expected


def test_the_shared_stakeholders_file_serves_a_scenario_with_fewer_segments(tmp_path: Path
                                                                           ) -> None:
    """rules/stakeholders.yaml is shared: its `small` template is not a problem for a
    scenario without small accounts, from the file or by --set (both were refused, as a
    template "that would never be used")."""
    import shutil

    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "scenarios").mkdir()
    text = (ROOT / "scenarios" / "trainer_single_account.yaml").read_text()
    three = "segments: {enterprise: 0.5, midmarket: 0.5, small: 0.0}"
    assert three in text
    two = tmp_path / "scenarios" / "two_seg.yaml"
    two.write_text(text.replace(three, "segments: {enterprise: 0.5, midmarket: 0.5}"))
    assert list(load_scenario(two).scenario.portfolio.generate.segments) == [
        "enterprise", "midmarket"]
    spec = load_scenario(ROOT / "scenarios" / "trainer_single_account.yaml",
                         ["portfolio.generate.segments={enterprise: 1.0}"])
    assert list(spec.scenario.portfolio.generate.segments) == ["enterprise"]
    assert set(spec.stakeholders.units) == {"enterprise", "midmarket", "small", "default"}


# ---------------------------------------------------------------- switching the strategy


def test_switching_the_strategy_by_override_drops_the_files_former_settings() -> None:
    """`--set strategy.name=tiered` on a file that runs value_based with `by: clv` (or a
    sweep of `strategy.name`) means the user chose another strategy: the file's settings of
    its former one are dropped, not refused; a setting the override itself gives for a
    strategy not run is still refused, as is one the file gives next to its own name."""
    from kamsim.errors import Location

    tiny = ["portfolio.generate.accounts=50"]
    spec = load_scenario(ROOT / "scenarios" / "value_based.yaml",
                         [*tiny, "strategy.name=tiered"])
    assert spec.scenario.strategy.name == "tiered"
    assert "by" not in spec.scenario.strategy.model_fields_set
    spec = load_scenario(ROOT / "scenarios" / "cultivate.yaml",
                         [*tiny, "strategy.name=equal", "strategy.level=important"])
    assert spec.scenario.strategy.level == "important"
    assert "extra_effort" not in spec.scenario.strategy.model_fields_set
    # a sweep's point locates its override at --vary: the same
    spec = load_scenario(ROOT / "scenarios" / "cultivate.yaml", ["strategy.name=tiered"],
                         where=[Location("--vary[0]", 1, 1)])
    assert "extra_effort" not in spec.scenario.strategy.model_fields_set
    with pytest.raises(InputError) as exc:
        load_scenario(ROOT / "scenarios" / "value_based.yaml",
                      [*tiny, "strategy.name=tiered", "strategy.level=key"])
    [line] = [p.format() for p in exc.value.problems]
    assert line.startswith("--set[2]:1:10: strategy.level: `level` is a setting of the equal")


def test_a_non_finite_number_is_one_problem_and_the_rest_is_checked(tmp_path: Path) -> None:
    """`.nan` in an object is reported once, at itself (not again as a missing median by the
    object's own check), and another field of the same object is still checked."""
    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    path = tmp_path / "scenarios" / "baseline.yaml"
    text = path.read_text()
    line = "wallet: {dist: lognormal, median: 120000, sigma: 1.3}"
    assert line in text
    path.write_text(text.replace(line, "wallet: {dist: lognormal, median: .nan, sigma: -1}")
                    .replace("horizon_months: 60", "horizon_months: .inf"))
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    lines = [p.format().removeprefix(str(path)) for p in exc.value.problems]
    assert lines == [
        ":18:39: '.nan' is not a finite number (a finite number)",
        ":18:52: portfolio.generate.wallet.sigma: Input should be greater than or equal to 0, "
        "got -1 (a number >= 0.0)",
        ":29:17: '.inf' is not a finite number (a finite number)"]


def test_a_scenario_compiles_each_rule_expression_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_scenario compiled every rule file's expressions twice: once with the file's own
    names, and again with the names of the other files. Now once, with all of them."""
    from kamsim.spec import load

    compiled: dict[tuple[str, tuple[object, ...]], int] = {}
    real = load._check

    def spy(doc, path, *args, **kw):  # type: ignore[no-untyped-def]
        compiled[doc.path, path] = compiled.get((doc.path, path), 0) + 1
        return real(doc, path, *args, **kw)

    monkeypatch.setattr(load, "_check", spy)
    load_scenario(ROOT / "scenarios" / "baseline.yaml")
    assert len(compiled) > 20  # (the shipped tiering, stages and scenario expressions)
    assert {where for where, n in compiled.items() if n != 1} == set()


def test_names_of_a_file_with_a_broken_expression_are_still_known(tmp_path: Path) -> None:
    """A tiering file with a bad expression still names the tiers a stages file compares
    `tier` with: both problems are reported at once (the stages file's was found only after
    the tiering file was mended)."""
    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    tiering = tmp_path / "rules" / "tiering.yaml"
    text = tiering.read_text()
    assert "expr: loyalty" in text
    tiering.write_text(text.replace("expr: loyalty", "expr: loyalty +", 1))
    stages = tmp_path / "rules" / "stages.yaml"
    text = stages.read_text()
    assert 'up_when: "trust >= 0.45' in text
    stages.write_text(text.replace('up_when: "trust', 'up_when: "tier == \'kye\' or trust', 1))
    with pytest.raises(InputError) as exc:
        load_scenario(tmp_path / "scenarios" / "baseline.yaml")
    where = {Path(p.loc.path).name for p in exc.value.problems}
    assert where == {"tiering.yaml", "stages.yaml"}, str(exc.value)
    assert "'kye'" in str(exc.value)


def test_a_loaded_scenario_s_rules_are_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a scenario compiles its rules to check them; compiling its model compiled
    each again (the check passes the names `tier`, `stage`, ... may take, the use does not),
    26 expressions for the baseline. Now the model takes those the check compiled."""
    import kamsim.rules.expr as expr
    from kamsim.compile import compile_model

    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml", SMALL)
    compiled: list[str] = []

    class Counted(expr._Compiler):  # type: ignore[misc,name-defined]
        def __init__(self, src: Any, *args: Any) -> None:
            compiled.append(src.text)
            super().__init__(src, *args)

    monkeypatch.setattr(expr, "_Compiler", Counted)
    model = compile_model(spec)
    assert compiled == []
    assert model.tiering.table.rows  # (the model has its rules)
