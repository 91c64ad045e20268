"""Tiering: the weighted score (by hand on four accounts), the decision table's hit policies,
hysteresis, value-matrix quadrants, the Pareto cut, and the `kamsim tier` command."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from kamsim.cli.main import cli
from kamsim.errors import InputError
from kamsim.spec.models import TieringRules
from kamsim.tiering import QUADRANTS, compile_tiering

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
SMALL = ["--set", "portfolio.generate.accounts=300"]

# four accounts with known indicator values
ENV: dict[str, np.ndarray] = {
    "loyalty": np.array([0.2, 0.4, 0.6, 0.8]),
    "payment_risk": np.array([0.1, 0.5, 0.0, 1.0]),
    "revenue": np.array([10.0, 40.0, 30.0, 20.0]),
    "segment": np.array(["small", "enterprise", "small", "midmarket"], dtype=object),
}
ALL = np.ones(4, dtype=bool)


def rules(rows: list[dict[str, Any]], hit_policy: str = "first", **extra: Any) -> TieringRules:
    return TieringRules.model_validate({
        "kind": "tiering", "tiers": ["key", "important", "general"],
        "indicators": {
            "loyal": {"expr": "loyalty", "weight": 2, "normalize": "none"},
            "risk": {"expr": "payment_risk", "weight": -1, "normalize": "none"},
            "volume": {"expr": "revenue", "weight": 1, "normalize": "rank"},
        },
        "table": {"hit_policy": hit_policy, "rows": rows, "default": "general"},
        **extra,
    })


def test_score_by_hand() -> None:
    t = compile_tiering(rules([{"when": "score > 2", "tier": "key"}]))
    # rank of revenue [10, 40, 30, 20] -> [0.25, 1.0, 0.75, 0.5]; a negative weight rewards a
    # low value: -1 contributes 1 * (1 - risk); the sum is divided by sum |w| = 4
    expected = np.array([
        (2 * 0.2 + (1 - 0.1) + 0.25) / 4,
        (2 * 0.4 + (1 - 0.5) + 1.00) / 4,
        (2 * 0.6 + (1 - 0.0) + 0.75) / 4,
        (2 * 0.8 + (1 - 1.0) + 0.50) / 4,
    ])
    np.testing.assert_allclose(t.score(ENV, ALL), expected)
    # outside the mask the score is 0 and the ranks are over the masked accounts only
    mask = np.array([True, True, False, True])
    s = t.score(ENV, mask)
    assert s[2] == 0.0
    np.testing.assert_allclose(s[1], (0.8 + 0.5 + 1.0) / 4)  # still the largest revenue
    np.testing.assert_allclose(s[3], (1.6 + 0.0 + 2 / 3) / 4)


@pytest.mark.parametrize("how, expected", [
    ("minmax", [0.0, 1.0, 2 / 3, 1 / 3]),
    ("rank", [0.25, 1.0, 0.75, 0.5]),
    ("none", [1.0, 1.0, 1.0, 1.0]),  # clipped to 0-1
])
def test_normalisations(how: str, expected: list[float]) -> None:
    r = TieringRules.model_validate({
        "kind": "tiering", "tiers": ["a"],
        "indicators": {"v": {"expr": "revenue", "weight": 1, "normalize": how}},
        "table": {"rows": [{"when": "score > 2", "tier": "a"}], "default": "a"}})
    np.testing.assert_allclose(compile_tiering(r).score(ENV, ALL), expected)


def test_zscore_is_centred() -> None:
    r = TieringRules.model_validate({
        "kind": "tiering", "tiers": ["a"],
        "indicators": {"v": {"expr": "revenue", "weight": 1, "normalize": "zscore"}},
        "table": {"rows": [{"when": "score > 2", "tier": "a"}], "default": "a"}})
    s = compile_tiering(r).score(ENV, ALL)
    assert abs(s.mean() - 0.5) < 1e-12 and s.argmax() == 1 and s.argmin() == 0


# scores: [0.3875, 0.575, 0.7375, 0.525]
ROWS = [
    {"when": "score >= 0.5", "tier": "important", "priority": 1},
    {"when": "score >= 0.7", "tier": "key", "priority": 5},
]


def test_hit_policy_first() -> None:
    tier, _ = compile_tiering(rules(ROWS, "first")).assign(ENV, ALL)
    # the first matching row wins: nobody reaches `key`; no row -> default `general`
    assert list(tier) == [2, 1, 1, 1]


def test_hit_policy_priority() -> None:
    tier, _ = compile_tiering(rules(ROWS, "priority")).assign(ENV, ALL)
    assert list(tier) == [2, 1, 0, 1]


def test_hit_policy_unique_refuses_overlaps() -> None:
    t = compile_tiering(rules(ROWS, "unique"))
    with pytest.raises(InputError, match="1 account.* match more than one of the rows.*: #3 \\("):
        t.assign(ENV, ALL)  # (no ids: the account's position)
    with pytest.raises(InputError, match=r": C \("):
        t.assign(ENV, ALL, ids=np.array(["A", "B", "C", "D"]))
    ok = compile_tiering(rules([{"when": "score >= 0.7", "tier": "key"},
                                {"when": "score >= 0.5 and score < 0.7", "tier": "important"}],
                               "unique"))
    assert list(ok.assign(ENV, ALL)[0]) == [2, 1, 0, 1]


def test_rows_may_use_indicators_and_fields() -> None:
    t = compile_tiering(rules([{"when": "segment == 'enterprise'", "tier": "key"},
                               {"when": "risk > 0.4 and volume >= 0.5", "tier": "important"}]))
    # `risk` and `volume` are the normalised indicators: risk = payment_risk (none)
    assert list(t.assign(ENV, ALL)[0]) == [2, 0, 2, 1]


def _single(hysteresis: float) -> Any:
    return compile_tiering(TieringRules.model_validate({
        "kind": "tiering", "tiers": ["key", "general"],
        "indicators": {"l": {"expr": "loyalty", "weight": 1, "normalize": "none"}},
        "table": {"rows": [{"when": "score >= 0.5", "tier": "key"}], "default": "general"},
        "retier": {"hysteresis": hysteresis}}))


def test_hysteresis_keeps_a_tier_for_a_small_change_only() -> None:
    t = _single(0.05)
    env = {"loyalty": np.array([0.48, 0.40, 0.53, 0.60])}
    mask = np.ones(4, dtype=bool)
    current = np.array([0, 0, 1, 1])  # key, key, general, general
    fresh, _ = t.assign(env, mask)
    assert list(fresh) == [1, 1, 0, 0]  # without history: by the boundary alone
    tier, _ = t.assign(env, mask, current)
    # 0.48 and 0.53 are within 0.05 of the boundary: they keep their tier;
    # 0.40 and 0.60 are beyond it: they move
    assert list(tier) == [0, 1, 1, 0]
    # no hysteresis: everybody moves
    assert list(_single(0.0).assign(env, mask, current)[0]) == [1, 1, 0, 0]


def test_a_unique_tables_overlap_under_a_nudge_is_found_for_a_staying_account() -> None:
    """An account the plain table leaves in its tier needs no nudge to keep it there, but a
    `unique` table still nudges it: its rows may overlap for the nudged score alone, and
    that is a problem of the rules. Here 0.49 matches neither row (general, as it is now),
    and nudged up to 0.54 both."""
    t = compile_tiering(TieringRules.model_validate({
        "kind": "tiering", "tiers": ["key", "important", "general"],
        "indicators": {"l": {"expr": "loyalty", "weight": 1, "normalize": "none"}},
        "table": {"hit_policy": "unique", "default": "general",
                  "rows": [{"when": "score >= 0.5", "tier": "key"},
                           {"when": "score >= 0.52", "tier": "important"}]},
        "retier": {"hysteresis": 0.05}}))
    env = {"loyalty": np.array([0.49, 0.1])}
    mask = np.ones(2, dtype=bool)
    assert list(t.assign(env, mask)[0]) == [2, 2]  # no history: no nudge, no overlap
    with pytest.raises(InputError, match="with the score moved by the re-tiering hysteresis"):
        t.assign(env, mask, np.array([2, 2]))


def test_hysteresis_leaves_inactive_accounts_alone() -> None:
    t = _single(0.05)
    env = {"loyalty": np.array([0.9, 0.1])}
    tier, _ = t.assign(env, np.array([True, False]), np.array([1, 0]))
    assert list(tier) == [0, 0]


def test_quadrants() -> None:
    r = rules([{"when": "score > 2", "tier": "key"}],
              quadrants={"volume": "rank_pct(revenue)", "loyalty": "loyalty",
                         "volume_cut": 0.6, "loyalty_cut": 0.5})
    q = compile_tiering(r).quadrant(ENV, ALL)
    # volume rank [0.25, 1, 0.75, 0.5] >= 0.6: [F, T, T, F]; loyalty >= 0.5: [F, F, T, T]
    names = [QUADRANTS[i] for i in q]
    assert names == ["reduce", "manage_risk", "protect", "cultivate"]


def test_pareto_cut_picks_exactly_the_accounts_making_80_percent() -> None:
    env = {"revenue": np.array([5.0, 50.0, 10.0, 30.0, 5.0]),
           "loyalty": np.full(5, 0.5), "payment_risk": np.zeros(5)}
    t = compile_tiering(rules([{"when": "cum_share(revenue) <= 0.8", "tier": "key"}]))
    tier, _ = t.assign(env, np.ones(5, dtype=bool))
    picked = np.flatnonzero(tier == 0)
    assert list(picked) == [1, 3]
    assert env["revenue"][picked].sum() / env["revenue"].sum() == pytest.approx(0.8)


def test_pareto_cut_on_a_generated_portfolio() -> None:
    from kamsim.portfolio import generate_portfolio
    from kamsim.spec.models import PortfolioGenerate

    acc = generate_portfolio(PortfolioGenerate(accounts=3000), 4)
    env = acc.env()
    t = compile_tiering(rules([{"when": "cum_share(revenue) <= 0.8", "tier": "key"}]))
    picked = t.assign(env, np.ones(acc.n, dtype=bool))[0] == 0
    rev = env["revenue"]
    share = rev[picked].sum() / rev.sum()
    assert 0.8 - rev.max() / rev.sum() < share <= 0.8
    # they are the largest accounts
    assert rev[picked].min() >= rev[~picked].max()
    assert picked.mean() < 0.5  # heavy tail: a minority makes up 80%


# ------------------------------------------------------------------ kamsim tier


def test_tier_command_prints_the_tier_table() -> None:
    result = CliRunner().invoke(cli, ["tier", BASELINE])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Tiers of the starting portfolio" in out
    for word in ("key", "important", "general", "revenue share", "protect"):
        assert word in out


def test_tier_summary_is_consistent() -> None:
    from kamsim.spec.load import load_scenario
    from kamsim.tiering import tier_portfolio

    res = tier_portfolio(load_scenario(BASELINE))
    rows = res.summary()
    assert [r["tier"] for r in rows] == ["key", "important", "general"]
    assert sum(r["accounts"] for r in rows) == 2000
    assert sum(r["revenue_share"] for r in rows) == pytest.approx(1.0)
    key, important, general = rows
    # key accounts are few and carry a disproportionate share of revenue
    assert key["account_share"] < key["revenue_share"]
    assert key["mean_score"] > important["mean_score"] > general["mean_score"]
    assert sum(r[q] for r in rows for q in QUADRANTS) == 2000


def test_tier_out_csv(tmp_path: Path) -> None:
    out = tmp_path / "tiers.csv"
    result = CliRunner().invoke(cli, ["tier", BASELINE, *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 300
    assert set(rows[0]) == {"account_id", "tier", "score", "quadrant", "revenue", "gross_profit"}
    assert {r["tier"] for r in rows} <= {"key", "important", "general"}
    assert [p.name for p in tmp_path.iterdir()] == ["tiers.csv"]  # no temporary left


def test_tier_out_parquet(tmp_path: Path) -> None:
    import duckdb

    out = tmp_path / "tiers.parquet"
    result = CliRunner().invoke(cli, ["tier", BASELINE, *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    df = duckdb.sql(f"select * from read_parquet('{out}')").df()
    assert len(df) == 300 and df["score"].between(0, 1).all()


@pytest.mark.parametrize("target", ["missing/tiers.csv", "tiers.xlsx"])
def test_tier_out_bad_target(tmp_path: Path, target: str) -> None:
    result = CliRunner().invoke(cli, ["tier", BASELINE, *SMALL, "--out",
                                      str(tmp_path / target)])
    assert result.exit_code == 2
    assert "--out" in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def _workspace(tmp_path: Path, rows: dict[str, str] | None = None) -> Path:
    """The shipped scenario and rules in ``tmp_path``, the tiering table's hit policy
    `unique`; ``rows``: conditions that replace the shipped ones (old -> new)."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "sc").mkdir()
    for f in (ROOT / "rules").glob("*.yaml"):
        (tmp_path / "rules" / f.name).write_text(f.read_text())
    (tmp_path / "sc" / "baseline.yaml").write_text(Path(BASELINE).read_text())
    tiering = tmp_path / "rules" / "tiering.yaml"
    text = tiering.read_text().replace("hit_policy: first", "hit_policy: unique")
    for old, new in (rows or {}).items():
        assert old in text
        text = text.replace(old, new)
    tiering.write_text(text)
    return tmp_path / "sc" / "baseline.yaml"


def _policy_line(scenario: Path) -> str:
    """``path:line:col`` of the tiering table's hit_policy value, as kamsim shows it."""
    text = (scenario.parent.parent / "rules" / "tiering.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "hit_policy:" in t)
    col = text[line - 1].index("unique") + 1
    return f"{scenario.parent}/../rules/tiering.yaml:{line}:{col}: "


def test_overlapping_unique_rows_are_a_problem_of_the_tiering_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped table's rows overlap (a key account is also in the first 80% of revenue):
    under `unique` that is a located input problem naming rows and account ids, found by
    validate (against the starting portfolio), tier and run alike; nothing is written."""
    scenario = _workspace(tmp_path)
    store = tmp_path / "runs.duckdb"
    monkeypatch.setenv("KAMSIM_STORE", str(store))
    small = ["--set", "portfolio.generate.accounts=200"]
    runs = [["validate", str(scenario)], ["tier", str(scenario), *small],
            ["run", str(scenario), *small, "--set", "replications=1", "--set",
             "horizon_months=2", "--out", str(tmp_path / "out")]]
    for args in runs:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 2 and lines[1] == "1 problem found; nothing was written.", lines
        assert lines[0].startswith(_policy_line(scenario)), lines
        assert "match more than one of the rows (line 31: key; line 34: important)" in lines[0]
        assert re.search(r"\): A\d+, A\d+, .* and \d+ more \(", lines[0]), lines[0]
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not store.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_overlap_found_at_a_retiering_stops_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str) -> None:
    """Rows that cannot overlap at month 0 (no account has been 12 months in its stage) but
    do at the re-tiering of month 12: the run stops with the same located line, in a worker
    process too; nothing is recorded."""
    scenario = _workspace(tmp_path, {
        '"rank_pct(score) >= 0.92 or (cum_share(revenue) <= 0.5 and payment_risk < 0.4)"':
            '"months_in_stage >= 12"',
        '"rank_pct(score) >= 0.7 or cum_share(revenue) <= 0.8"': '"score < 0.3"'})
    store = tmp_path / "runs.duckdb"
    monkeypatch.setenv("KAMSIM_STORE", str(store))
    assert CliRunner().invoke(cli, ["validate", str(scenario)]).exit_code == 0
    result = CliRunner().invoke(cli, [
        "run", str(scenario), "--set", "portfolio.generate.accounts=200", "--set",
        "replications=2", "--set", "horizon_months=14", "--workers", workers,
        "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(_policy_line(scenario)), lines
    assert "(line 31: key; line 34: important): A" in lines[0]
    assert not (tmp_path / "out").exists() and not store.exists()


def test_the_loader_checks_quadrant_names_against_the_quadrants_tiering_gives() -> None:
    from kamsim.fields import QUADRANT_NAMES
    from kamsim.tiering import QUADRANTS

    assert QUADRANT_NAMES == tuple(QUADRANTS)


def test_the_names_a_tiering_reads_are_collected_once() -> None:
    """The names the table, the quadrant axes and the indicators read were collected anew
    by every re-tiering (the table's at each of its three evaluations with hysteresis) and
    again by the first tiering's set-up: now once, with the compiled tiering."""
    from kamsim.spec.load import load_rule_file

    rules, _doc = load_rule_file(ROOT / "rules" / "tiering.yaml", "tiering")
    t = compile_tiering(rules)
    assert t.table.names is t.table.names
    assert t.reread is t.reread and t.reads is t.reads
    assert t.reread == t.table.names | t.volume.names | t.loyalty.names
    assert t.reads == t.reread.union(*(e.names for _n, e, _w, _h in t.indicators))
    assert {"loyalty", "revenue"} <= t.reads


@pytest.mark.parametrize("reads_units", [False, True])
def test_validate_checks_a_unique_table_on_what_the_first_tiering_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads_units: bool) -> None:
    """kamsim validate built a run's whole starting point (arrivals' slots, decision units,
    industry network) to check a `unique` table's rows against the starting portfolio. A
    table that reads no decision-unit field is now checked on the starting portfolio alone,
    with the same problem (rows and account ids) as a run's start finds."""
    import importlib

    from kamsim.experiment import _CACHE
    from kamsim.spec.load import load_scenario
    from kamsim.tiering import check_start, tier_portfolio

    rows = {"payment_risk < 0.4": "payment_risk < 0.4 and coverage >= 0"} if reads_units else {}
    spec = load_scenario(_workspace(tmp_path, rows), ["portfolio.generate.accounts=300"])
    _CACHE.clear()
    with pytest.raises(InputError) as full:
        tier_portfolio(spec)
    _CACHE.clear()
    built = []
    prepare = importlib.import_module("kamsim.engine.prepare")
    real = prepare.prepare
    monkeypatch.setattr(prepare, "prepare", lambda model: built.append(1) or real(model))
    # the model is compiled once (a tiering that reads unit fields compiled it twice)
    compiled = []
    compile_ = importlib.import_module("kamsim.compile")
    real_compile = compile_.compile_model
    monkeypatch.setattr(compile_, "compile_model",
                        lambda spec: compiled.append(1) or real_compile(spec))
    with pytest.raises(InputError) as checked:
        check_start(spec)
    assert checked.value.problems == full.value.problems
    assert built == ([1] if reads_units else [])
    assert compiled == [1]
