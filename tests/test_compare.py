"""compare: paired differences, intervals, verdict wording, the CLI, stored runs, and the
headline model verdict (tiered vs equal treatment)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kamsim.compare import ALL, RunFigures, compare, compare_runs, per_replication_from_accounts
from kamsim.results import HEADLINES
from kamsim.stats import mean_ci

REPO = Path(__file__).resolve().parents[1]
EQUAL = str(REPO / "scenarios" / "equal_treatment.yaml")
TIERED = str(REPO / "scenarios" / "tiered.yaml")
SMALL = ["portfolio.generate.accounts=150", "horizon_months=18", "replications=4"]


@pytest.fixture(scope="module")
def pair():
    return compare([EQUAL, TIERED], overrides=SMALL, workers=1)


def test_paired_differences_equal_hand_computation(pair):
    ref, other = (r.per_replication() for r in pair.results)
    tiers = pair.runs[0].tiers
    table = pair.table()
    assert len(table) == (1 + len(tiers)) * len(HEADLINES)
    for row in table.itertuples(index=False):
        col = 0 if row.tier == ALL else tiers.index(row.tier) + 1
        a, b = ref[row.metric][:, col], other[row.metric][:, col]
        d = mean_ci(b - a)
        assert row.diff == pytest.approx(d["mean"], rel=1e-12, abs=1e-9)
        assert row.diff_low == pytest.approx(d["ci_low"], rel=1e-12, abs=1e-9)
        assert row.diff_high == pytest.approx(d["ci_high"], rel=1e-12, abs=1e-9)
        assert row.reference_mean == pytest.approx(a.mean())
        if a.mean() != 0:
            assert row.rel == pytest.approx(100 * d["mean"] / abs(a.mean()))
            assert row.rel_low == pytest.approx(100 * d["ci_low"] / abs(a.mean()))
    assert pair.paired == [True, True]


def test_pairing_is_tighter_than_independent_intervals(pair):
    # the point of common random numbers: the paired interval of the portfolio revenue
    # difference is narrower than the two separate intervals added up
    ref, other = (r.per_replication()["revenue"][:, 0] for r in pair.results)
    row = pair.table().query("tier == 'all' and metric == 'revenue'").iloc[0]
    separate = sum(mean_ci(x)["ci_high"] - mean_ci(x)["ci_low"] for x in (ref, other))
    assert row.diff_high - row.diff_low < separate


def test_accounts_table_gives_the_same_per_replication_figures(small_baseline_result):
    r = small_baseline_result
    derived = per_replication_from_accounts(r.accounts(), r.tiers)
    direct = r.per_replication()
    for name in HEADLINES:
        np.testing.assert_allclose(derived[name], direct[name], rtol=1e-10, atol=1e-6)


def test_a_scenario_against_itself_differs_by_exactly_zero(small_baseline_result):
    run = RunFigures.from_result(small_baseline_result)
    cmp = compare_runs([run, run])
    t = cmp.table()
    assert (t["diff"] == 0).all() and (t["diff_low"] == 0).all() and (t["diff_high"] == 0).all()
    assert cmp.names == ["baseline", "baseline #2"]
    assert "no clear difference in profit" in cmp.verdict()[0]


def test_the_same_file_twice_through_compare_is_identical():
    cmp = compare([EQUAL, EQUAL], overrides=["portfolio.generate.accounts=80",
                                             "horizon_months=12", "replications=2"], workers=1)
    assert (cmp.table()["diff"] == 0).all()


def _fake(name: str, profit: list[float], key_retention: list[float],
          ids: tuple[str, ...] = ("A1", "A2")) -> RunFigures:
    n = len(profit)
    per = {m: np.ones((n, 3)) for m in HEADLINES}
    per["profit"] = np.column_stack([profit, np.array(profit) * 0.6, np.array(profit) * 0.4])
    per["retention"] = np.column_stack([key_retention, key_retention, key_retention])
    return RunFigures(name=name, seed=1, replications=n, tiers=("key", "other"),
                      per_rep=per, starting_ids=ids)


REF = _fake("equal", [100.0, 102.0, 98.0, 100.0], [0.80, 0.82, 0.78, 0.80])


def test_verdict_positive():
    better = _fake("tiered", [110.0, 112.5, 107.5, 110.2], [0.84, 0.86, 0.82, 0.85])
    (line,) = compare_runs([REF, better]).verdict()
    assert line.startswith("tiered earns 10.") and "% more profit than equal (95% CI " in line
    assert "key-account retention +4.2 points (" in line


def test_verdict_negative():
    worse = _fake("cheap", [90.0, 91.5, 88.5, 90.2], [0.70, 0.71, 0.69, 0.70])
    (line,) = compare_runs([REF, worse]).verdict()
    assert line.startswith("cheap earns 9.") and "% less profit than equal" in line
    assert "key-account retention −10.0 points (" in line


def test_verdict_unclear():
    same = _fake("maybe", [103.0, 99.0, 101.0, 97.5], [0.81, 0.80, 0.79, 0.80])
    (line,) = compare_runs([REF, same]).verdict()
    assert line.startswith("maybe vs equal: no clear difference in profit (−")
    assert "% to +" in line
    assert "key-account retention: no clear difference" in line


def test_different_portfolios_are_compared_but_flagged():
    other = _fake("elsewhere", [110.0, 112.5, 107.5, 110.2], [0.84, 0.86, 0.82, 0.85],
                  ids=("B1", "B2"))
    cmp = compare_runs([REF, other])
    assert cmp.paired == [True, False]
    assert "portfolios differ: differences are not paired" in cmp.verdict()[0]
    row = cmp.table().query("tier == 'all' and metric == 'profit'").iloc[0]
    assert row["diff"] == pytest.approx(10.05)


def _cli():
    from kamsim.cli import commands  # noqa: F401  (registers the commands)
    from kamsim.cli.main import cli

    return cli


def test_cli_twice_prints_identical_numbers():
    args = ["compare", EQUAL, TIERED, "--no-store", "-w", "1", *sum((["--set", s]
                                                                      for s in SMALL), [])]
    runner = CliRunner()
    first = runner.invoke(_cli(), args)
    second = runner.invoke(_cli(), args)
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert "tiered" in first.output and "profit" in first.output


def test_cli_json_keys_and_store_group(store_path):
    args = ["compare", EQUAL, TIERED, "--json", "--store", str(store_path), "-w", "1",
            *sum((["--set", s] for s in SMALL), [])]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {"reference", "confidence", "runs", "rows", "verdict", "group"} <= set(data)
    assert data["reference"] == "equal_treatment"
    assert set(data["rows"][0]) == {"scenario", "tier", "metric", "reference_mean", "mean",
                                    "diff", "diff_low", "diff_high", "rel", "rel_low",
                                    "rel_high"}
    from kamsim import store

    with store.open(store_path) as st:
        ids = [r.run_id for r in st.group(data["group"])]
    assert sorted(ids) == sorted(r["run_id"] for r in data["runs"])

    # the stored runs compare to the same numbers as the fresh ones
    again = compare([r["run_id"] for r in data["runs"]], store=store_path)
    np.testing.assert_allclose(again.table()["diff"], [r["diff"] for r in data["rows"]],
                               rtol=1e-9, atol=1e-6)
    assert again.verdict() == data["verdict"]


def test_cli_rejects_a_missing_scenario_cleanly(tmp_path):
    res = CliRunner().invoke(_cli(), ["compare", EQUAL, str(tmp_path / "nope.yaml"),
                                      "--no-store"])
    assert res.exit_code == 2
    assert "nope.yaml: no such scenario file" in res.output
    assert "Traceback" not in res.output


@pytest.mark.slow
def test_model_verdict_tiered_earns_more_than_equal_treatment():
    # The stylised fact of key-account management: with capacity short of what the service
    # levels ask for, serving by tier earns more than serving everyone alike.
    # (An earlier calibration said the opposite: -24.3%, CI -25.6 to -23.1%; kept as history.)
    cmp = compare([EQUAL, TIERED], replications=6)
    row = cmp.table().query("tier == 'all' and metric == 'profit'").iloc[0]
    assert row.diff_low > 0, cmp.verdict()
