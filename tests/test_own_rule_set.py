"""A rule set of the user's own names (tests/own_rules: a reviewer's, written from scratch):
what kamsim would silently ignore or misread in it is a located problem, and the messages
speak of the names the user gave (not of the shipped ones)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kamsim.errors import InputError
from kamsim.spec.load import load_rule_file, load_scenario

OWN = Path(__file__).resolve().parent / "own_rules"


def _copy(tmp_path: Path, *edits: tuple[str, str, str]) -> Path:
    """The own rule set in ``tmp_path``, each (file, old, new) text replaced everywhere;
    returns the scenario's path."""
    shutil.copytree(OWN, tmp_path / "own")
    for name, old, new in edits:
        f = tmp_path / "own" / name
        text = f.read_text()
        assert old in text, (name, old)
        f.write_text(text.replace(old, new))
    return tmp_path / "own" / "plan.yaml"


def _lines(path: Path, sets: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(InputError) as exc:
        load_scenario(path, list(sets))
    return [p.format() for p in exc.value.problems]


def _at(path: Path, text: str, nth: int = 1) -> str:
    """``path:line:col`` of the ``nth`` line holding ``text``, at the text."""
    found = [(i, line.index(text) + 1)
             for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    line, col = found[nth - 1]
    return f"{path}:{line}:{col}"


def test_the_own_rule_set_loads() -> None:
    spec = load_scenario(OWN / "plan.yaml")
    assert spec.stages.uncoupled.name == "estranged"


def test_a_stakeholders_file_without_an_economic_buyer_is_refused(tmp_path: Path) -> None:
    """With `ceo` for the decision maker, every account counted its economic buyer as
    uncovered (the eb_uncovered flag, dm_covered false), without a word; a `champion` role
    beside `ceo` let the file pass, with the same silent effect."""
    plan = _copy(tmp_path, ("rules/people.yaml", "economic_buyer", "ceo"))
    people = plan.parent / "rules" / "people.yaml"
    with pytest.raises(InputError) as exc:
        load_rule_file(people)
    (line,) = [p.format() for p in exc.value.problems]
    assert line == (f"{_at(people, 'roles:')}: no role is named economic_buyer, the name "
                    "kamsim knows the decision maker by, so every account would count its "
                    "economic buyer as uncovered, with dm_covered false and the eb_uncovered red "
                    "flag "
                    "(the decision maker's role named economic_buyer, and a champion role, if "
                    "any, champion; docs/rules.md, Stakeholder maps)")
    assert _lines(plan) == [line]
    people.write_text(people.read_text().replace("  operator:", "  champion: {}\n  operator:"))
    with pytest.raises(InputError) as exc:
        load_rule_file(people)
    assert [p.format() for p in exc.value.problems] == [line]
    # the champion is optional: the own rule set has none
    assert "champion" not in load_rule_file(OWN / "rules" / "people.yaml")[0].roles


def test_a_unit_template_for_no_segment_is_located_with_a_suggestion(tmp_path: Path) -> None:
    """`corprate` for `corporate` left the corporate accounts with the default unit."""
    plan = _copy(tmp_path, ("rules/people.yaml", "  corporate:", "  corprate:"))
    people = plan.parent / "rules" / "people.yaml"
    line = (f"{_at(people, 'corprate')}: unit template 'corprate' names no segment of the "
            f"portfolio of {plan} but is close to one with no template of its own, whose "
            "accounts would get the default unit (did you mean 'corporate'? one of its "
            "segments: corporate, shop, other, or `default`)")
    assert _lines(plan) == [line]
    # a segment of share 0 is still a segment; the default template needs none
    load_scenario(plan, ["portfolio.generate.segments={corprate: 0, corporate: 0.2, "
                         "shop: 0.5, other: 0.3}"])
    # a template for a segment the portfolio lacks (a shared file's) is not a misspelling,
    # beside one that is; without the segment it is close to, neither is
    people.write_text(people.read_text().replace(
        "  default:", "  wholesale: {roles: {buyer: 1}}\n  default:"))
    assert _lines(plan) == [line]
    load_scenario(plan, ["portfolio.generate.segments={shop: 0.5, other: 0.5}"])


def test_a_stakeholders_files_problems_come_in_one_round(tmp_path: Path) -> None:
    """Roles without an economic_buyer, an infinite influence, a misspelt template, a map
    for an account the portfolio lacks and a reporting cycle took three rounds of `kamsim
    validate`: the role names were not checked while a role had a problem of its own, nor
    the templates and maps against the portfolio while the file did not load."""
    plan = _copy(tmp_path)
    people = plan.parent / "rules" / "people.yaml"
    people.write_text(
        "kamsim: 1\nkind: stakeholders\nroles:\n"
        "  ceo: {influence: .inf}\n  engineer: {influence: 0.5}\n  buyer: {influence: 0.6}\n"
        "units:\n"
        "  corprate: {roles: {ceo: 1, engineer: 3, buyer: 2}}\n"
        "  default: {roles: {ceo: 1, engineer: 1, buyer: 1}}\n"
        "edges:\n"
        "  - {source: engineer, target: ceo, kind: reports_to}\n"
        "  - {source: ceo, target: engineer, kind: reports_to}\n"
        "accounts:\n  A999: {people: [{id: boss, role: ceo}]}\n")
    lines = _lines(plan)
    assert [ln.split(": ")[0] for ln in lines] == [
        _at(people, "roles:"), _at(people, ".inf"), _at(people, "corprate"),
        _at(people, "{source: ceo"), _at(people, "A999")]
    assert "no role is named economic_buyer" in lines[0]
    assert "'.inf' is not a finite number" in lines[1]
    assert "unit template 'corprate'" in lines[2] and "did you mean 'corporate'?" in lines[2]
    assert "closes a cycle of roles: ceo -> engineer -> ceo" in lines[3]
    assert "account 'A999' is not in the portfolio" in lines[4]
    # the file alone: all but what only the scenario knows
    with pytest.raises(InputError) as exc:
        load_rule_file(people)
    assert [p.format() for p in exc.value.problems] == [lines[0], lines[1], lines[3]]


def test_move_rules_past_the_ends_of_the_ladder_are_refused(tmp_path: Path) -> None:
    plan = _copy(tmp_path, (
        "rules/stages.yaml", "  - name: prospect\n",
        "  - name: prospect\n    down_when: \"trust < 0.3\"\n"), (
        "rules/stages.yaml", "  - name: ally\n",
        "  - name: ally\n    up_when: \"trust > 0.9\"\n"))
    stages = plan.parent / "rules" / "stages.yaml"
    assert _lines(plan) == [
        f"{_at(stages, 'down_when', 1)}: `down_when` on the first stage 'prospect' would "
        "never apply: there is no stage below it (leave it out; `uncoupled.when` breaks the "
        "relationship down from any stage)",
        f"{_at(stages, 'up_when', 3)}: `up_when` on the top stage 'ally' would never apply: "
        "there is no stage above it (leave it out)"]


def test_reporting_lines_in_a_cycle_are_refused(tmp_path: Path) -> None:
    """A person reporting to themself was refused; two reporting to each other were not."""
    plan = _copy(tmp_path, (
        "rules/people.yaml", "  - {source: engineer, target: economic_buyer, kind: influences",
        "  - {source: economic_buyer, target: buyer, kind: reports_to}\n"
        "  - {source: buyer, target: engineer, kind: reports_to}\n"
        "  - {source: engineer, target: economic_buyer, kind: influences"))
    people = plan.parent / "rules" / "people.yaml"
    people.write_text(people.read_text() + (
        "accounts:\n  A005:\n    people:\n"
        "      - {id: p1, role: economic_buyer, reports_to: p2}\n"
        "      - {id: p2, role: buyer, reports_to: p1}\n"
        "      - {id: p3, role: buyer, reports_to: p3}\n"))
    with pytest.raises(InputError) as exc:
        load_rule_file(people)
    assert [p.format() for p in exc.value.problems] == [
        f"{_at(people, '{source: buyer, target: engineer')}: reports_to buyer -> "
        "engineer closes a cycle of roles: buyer -> engineer -> economic_buyer -> buyer "
        "(reporting lines that end at a role that reports to no one)",
        f"{_at(people, 'p1}')}: reports_to 'p1' closes a cycle: p2 -> p1 -> p2 "
        "(reporting lines that end at a person who reports to no one)",
        f"{_at(people, 'p3}')}: reports_to 'p3' is no other person of account "
        "'A005' (one of: p1, p2)"]
    # a role reporting to itself is not a cycle: its people report to the first of them
    people.write_text(people.read_text().replace("reports_to: p1", "reports_to: null")
                      .replace("reports_to: p3", "reports_to: p2")
                      .replace("{source: buyer, target: engineer, kind: reports_to}",
                               "{source: buyer, target: buyer, kind: reports_to}"))
    load_rule_file(people)


def test_an_unknown_level_suggests_the_near_one(tmp_path: Path) -> None:
    plan = _copy(tmp_path, ("plan.yaml", "strategy: {name: tiered}",
                            "strategy: {name: equal, level: silver_lin}"))
    expected = ("unknown service level 'silver_lin' (did you mean 'silver_line'? one of: "
                "platinum_club, gold_circle, silver_line, bronze_base)")
    assert _lines(plan) == [f"{_at(plan, 'silver_lin')}: {expected}"]
    assert _lines(OWN / "plan.yaml", ("strategy={name: equal, level: silver_lin}",)) == [
        f"--set[0]:1:31: {expected}"]


def test_a_figure_name_unknown_in_every_variant_is_one_line(tmp_path: Path) -> None:
    """It was one line per variant, each the same problem at the same place, and without a
    suggestion."""
    from kamsim.lessons import load_lesson

    plan = _copy(tmp_path)
    lesson = plan.parent / "own.lesson.yaml"
    lesson.write_text(
        "kind: lesson\nname: own\ntitle: Grades\nquestion: Does grading keep more?\n"
        "scenario: plan.yaml\nfocus: A003\nmain: graded\nvariants:\n  graded: []\n"
        "  flat: [\"strategy={name: equal, level: silver_line}\"]\n"
        "figures:\n"
        "  - {name: kept, measure: retained_after_departure, role: ecoomic_buyer}\n"
        "  - {name: plat, measure: retention, tier: platinum_clb}\n"
        "  - {name: defect, measure: defection_rate, stage: prospekt}\n"
        "checks:\n  - {figure: plat, higher: graded, lower: flat}\n"
        "answer: Grading keeps the platinum club.\n")
    with pytest.raises(InputError) as exc:
        load_lesson(lesson)
    assert [p.format() for p in exc.value.problems] == [
        f"{_at(lesson, 'ecoomic_buyer')}: unknown role 'ecoomic_buyer' (did you mean "
        "'economic_buyer'? one of: economic_buyer, engineer, buyer, operator)",
        f"{_at(lesson, 'platinum_clb')}: unknown tier 'platinum_clb' (did you mean "
        "'platinum_club'? one of: platinum_club, gold_circle, silver_line, bronze_base)",
        f"{_at(lesson, 'prospekt')}: unknown stage 'prospekt' (did you mean 'prospect'? "
        "one of: prospect, partner, ally)"]
    # a name only some variants lack says which
    (plan.parent / "rules" / "people2.yaml").write_text(
        (plan.parent / "rules" / "people.yaml").read_text().replace("engineer", "engineerz"))
    lesson.write_text(lesson.read_text()
                      .replace("role: ecoomic_buyer", "role: engineer")
                      .replace("tier: platinum_clb", "tier: platinum_club")
                      .replace("stage: prospekt", "stage: prospect")
                      .replace("  flat: [\"strategy", "  flat: [\"rules.stakeholders="
                               "rules/people2.yaml\", \"strategy"))
    with pytest.raises(InputError) as exc:
        load_lesson(lesson)
    assert [p.format() for p in exc.value.problems] == [
        f"{_at(lesson, 'engineer}')}: "
        "unknown role 'engineer' in variant 'flat' (did you mean 'engineerz'? one of: "
        "economic_buyer, engineerz, buyer, operator)"]


def test_a_path_leaving_the_workspace_says_what_widens_it(tmp_path: Path) -> None:
    """The workspace is widened only by a folder named rules/: "the scenario's folder tree"
    did not tell an author with ../ruleset/ why it was refused. With no rules/ folder at or
    above the scenario, the message spoke of "the nearest folder ... that holds a folder
    named rules/", which was not there: it says the workspace is the scenario's own folder,
    and why."""
    plan = _copy(tmp_path)
    (plan.parent / "rules").rename(plan.parent / "ruleset")
    (plan.parent / "plans").mkdir()
    moved = plan.parent / "plans" / "plan.yaml"
    moved.write_text(plan.read_text().replace(": rules/", ": ../ruleset/"))
    assert not any((d / "rules").is_dir() for d in moved.parents)  # (what this is about)
    lines = _lines(moved)
    assert len(lines) == 4
    assert lines[0] == (
        f"{_at(moved, '../ruleset/tiering.yaml')}: path '../ruleset/tiering.yaml' leads "
        f"outside {moved.parent}, the scenario's workspace (a path inside "
        f"{moved.parent}: no folder at or above the scenario's own holds a folder named "
        "rules/, so the workspace is the scenario's own folder; a folder named rules/ "
        "widens it to the folder that holds it)")
    # as it says: a rules/ folder above the scenario makes the folder holding it the
    # workspace, and a path leaving that one is told so
    (plan.parent / "rules").mkdir()
    load_scenario(moved)
    moved.write_text(moved.read_text().replace(": ../ruleset/tiering", ": ../../tiering"))
    assert _lines(moved) == [
        f"{_at(moved, '../../tiering.yaml')}: path '../../tiering.yaml' leads outside "
        f"{plan.parent}, the scenario's workspace (a path inside {plan.parent}: the nearest "
        "folder at or above the scenario's own that holds a folder named rules/)"]
