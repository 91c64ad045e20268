"""sweep: the grid of points, common random numbers (each point is exactly its own
simulate), one pool for all the points, the table and verdict, the CLI and its store group,
and bad --vary values located and reported all at once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from _identical import assert_identical_results
from click.testing import CliRunner

from kamsim.errors import InputError, RunError
from kamsim.results import HEADLINES
from kamsim.stats import mean_ci
from kamsim.sweep import MAX_POINTS, Sweep, parse_vary, sweep

REPO = Path(__file__).resolve().parents[1]
BASELINE = str(REPO / "scenarios" / "baseline.yaml")
#: 300 accounts need about four account managers: 1 and 2 are short of them, 8 is not
SMALL = ["portfolio.generate.accounts=300", "horizon_months=12"]
SETS = [a for s in SMALL for a in ("--set", s)]
AM = "capacity.account_managers"


def _cli() -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers the commands)
    from kamsim.cli.main import cli

    return cli


@pytest.fixture(scope="module")
def grid() -> Sweep:
    return sweep(BASELINE, [f"{AM}=1,8", "capacity.executives=2:4:2"], replications=3,
                 overrides=SMALL, workers=2)


# ------------------------------------------------------------------- the points


def test_several_keys_make_the_full_grid_first_key_outermost(grid: Sweep) -> None:
    assert grid.keys == [AM, "capacity.executives"]
    assert grid.points == [{AM: 1, "capacity.executives": 2}, {AM: 1, "capacity.executives": 4},
                           {AM: 8, "capacity.executives": 2}, {AM: 8, "capacity.executives": 4}]
    assert grid.labels[1] == f"{AM}=1, capacity.executives=4"
    assert len(grid.results) == 4
    # each point ran the scenario with its values
    for point, result in zip(grid.points, grid.results, strict=True):
        capacity = result.resolved["scenario"]["capacity"]
        assert capacity["account_managers"] == point[AM]
        assert capacity["executives"] == point["capacity.executives"]


@pytest.mark.parametrize(("text", "values"), [
    ("a=1:5:2", (1, 3, 5)),
    ("a=1:6:2", (1, 3, 5)),          # STOP off the grid: not included
    ("a=5:1:-2", (5, 3, 1)),
    ("a=0.1:0.3:0.1", (0.1, 0.2, 0.3)),  # exact decimals, floats
    ("a=1:2:0.5", (1.0, 1.5, 2.0)),
    ("a=3", (3,)),
    ("a= 1, 2.5 ,x", (1, 2.5, "x")),
])
def test_values_and_ranges(text: str, values: tuple[Any, ...]) -> None:
    [axis] = parse_vary([text])
    assert axis.values == values
    assert [type(v) for v in axis.values] == [type(v) for v in values]


def test_each_point_is_exactly_its_own_simulate(grid: Sweep) -> None:
    """Common random numbers: replication r of every point uses the r-th seed of the
    sweep's seed, so each point is bit for bit the scenario run alone with that seed."""
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    for point, result in zip(grid.points, grid.results, strict=True):
        alone = simulate(load_scenario(BASELINE, [*SMALL, *(f"{k}={v}" for k, v in
                                                              point.items())]),
                         replications=3, workers=1)
        assert_identical_results(alone, result)


def test_workers_do_not_change_a_sweep(grid: Sweep) -> None:
    serial = sweep(BASELINE, [f"{AM}=1,8", "capacity.executives=2:4:2"], replications=3,
                   overrides=SMALL, workers=1)
    for a, b in zip(serial.results, grid.results, strict=True):
        assert_identical_results(a, b)
    # and the check is able to fail: another seed is another future
    other = sweep(BASELINE, [f"{AM}=1"], replications=3, seed=grid.seed + 1,
                  overrides=SMALL, workers=1)
    with pytest.raises(AssertionError):
        assert_identical_results(other.results[0], grid.results[0])


def test_a_loaded_scenario_is_swept_like_its_file() -> None:
    from kamsim.spec.load import load_scenario

    spec = load_scenario(BASELINE, SMALL)
    a = sweep(spec, f"{AM}=1,8", replications=2, workers=1)
    b = sweep(BASELINE, [f"{AM}=1,8"], replications=2, overrides=SMALL, workers=1)
    assert a.points == b.points
    for x, y in zip(a.results, b.results, strict=True):
        assert_identical_results(x, y)
    # a spec changed in Python is not what its file gives: refused, not silently undone
    changed = spec.with_scenario(spec.scenario.model_copy(update={"horizon_months": 6}))
    with pytest.raises(RunError, match="sweep the file"):
        sweep(changed, f"{AM}=1,8")


def test_all_points_and_replications_go_to_one_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    from kamsim import experiment

    calls: list[int] = []
    real = experiment._run_local_pool

    def pool(specs, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(specs))
        return real(specs, *args, **kwargs)

    monkeypatch.setattr(experiment, "_run_local_pool", pool)
    seen: list[float] = []
    sweep(BASELINE, [f"{AM}=1,2,8"], replications=2, overrides=SMALL, workers=2,
          progress=lambda d, t: seen.append(d))
    assert calls == [3]
    assert seen[-1] == 6


# ------------------------------------------------------------------- table and verdict


def test_table_rows_and_paired_differences_against_the_best(grid: Sweep) -> None:
    tiers = grid.results[0].tiers
    t = grid.table()
    assert len(t) == len(grid.points) * (1 + len(tiers)) * len(HEADLINES)
    assert list(t.columns[:3]) == [AM, "capacity.executives", "point"]
    b = grid.best_index("profit")
    assert grid.best() == grid.points[b]
    profit = t.query("tier == 'all' and metric == 'profit'")
    assert profit["mean"].idxmax() == profit.index[b]
    per = [r.per_replication()["profit"][:, 0] for r in grid.results]
    for i, row in enumerate(profit.itertuples(index=False)):
        d = mean_ci(per[i] - per[b])
        own = mean_ci(per[i])
        assert (row.mean, row.low, row.high) == pytest.approx(
            (own["mean"], own["ci_low"], own["ci_high"]))
        assert (row.diff, row.diff_low, row.diff_high) == pytest.approx(
            (d["mean"], d["ci_low"], d["ci_high"]))
    assert (t[t["point"] == grid.labels[b]]["diff"] == 0).all()
    # with 1 and 8 account managers for 300 accounts the answer is plain
    assert grid.best()[AM] == 8


@dataclass
class _Fake:
    """What a Sweep reads of a Result, with chosen per-replication profits."""

    profit: list[float]
    scenario: str = "s"
    seed: int = 1
    tiers: tuple[str, ...] = ("key",)
    confidence: float = 0.95
    currency: str = "EUR"
    n_start: int = 2
    account_ids: tuple[str, ...] = ("A1", "A2")
    portfolio: str = "p"
    # what compare checks the points share: one time grid and discount rate
    resolved: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[Any, ...] = (SimpleNamespace(periods=12, dt=1.0),)

    @property
    def replications(self) -> int:
        return len(self.profit)

    def per_replication(self) -> dict[str, np.ndarray]:
        per = {m: np.ones((len(self.profit), 2)) for m in HEADLINES}
        per["profit"] = np.column_stack([self.profit, self.profit])
        return per


def _fake_sweep(*profits: list[float]) -> Sweep:
    return Sweep(keys=["k"], points=[{"k": i + 1} for i in range(len(profits))],
                 labels=[f"k={i + 1}" for i in range(len(profits))],
                 results=[_Fake(p) for p in profits])


def test_verdict_best_clearly_ahead() -> None:
    sw = _fake_sweep([100e6, 102e6, 98e6], [110e6, 112.5e6, 107.5e6], [104e6, 106e6, 102e6])
    line = sw.verdict(["profit"])[0]
    assert line.startswith("profit is highest at k=2 (€110.00M); clearly ahead of every "
                           "other point: the nearest, k=3, has €6.00M less profit (95% CI ")
    assert "edge" not in line  # the peak is inside the values swept


def test_verdict_best_cannot_be_told_apart() -> None:
    sw = _fake_sweep([100e6, 102e6, 98e6], [103e6, 99e6, 101e6], [110e6, 112e6, 108e6])
    line = sw.verdict(["profit"])[0]
    assert line.startswith("profit is highest at k=3 (€110.00M), at the edge of the values "
                           "swept (none beyond it was tried)")
    sw = _fake_sweep([100e6, 102e6, 98e6], [103e6, 99e6, 101e6], [90e6, 91e6, 89e6])
    line = sw.verdict(["profit"])[0]
    assert line.startswith("profit is highest at k=2 (€101.00M); it cannot be told apart "
                           "from k=1 (k=1 minus the best: −")
    assert line.endswith(", 95% CI)")


def test_verdict_judges_every_point_against_the_best_not_only_the_second_mean() -> None:
    """k=3 has the second-highest mean and is clearly behind; k=1 has a lower mean but
    varies so much that it cannot be told apart from the best: not "clearly ahead"."""
    sw = _fake_sweep([80e6, 140e6, 100e6], [110e6, 112e6, 108e6], [107e6, 109e6, 105e6])
    line = sw.verdict(["profit"])[0]
    assert "clearly" not in line
    assert line.startswith("profit is highest at k=2 (€110.00M); it cannot be told apart "
                           "from k=1 (k=1 minus the best: −")


def test_the_difference_has_one_sign_in_the_table_and_the_verdict() -> None:
    """point - best in both: the table's diff of k=1 and the verdict's interval agree."""
    sw = _fake_sweep([100e6, 102e6, 98e6], [103e6, 99e6, 101e6], [90e6, 91e6, 89e6])
    row = sw.table().query("tier == 'all' and metric == 'profit' and point == 'k=1'").iloc[0]
    assert row["diff"] == pytest.approx(-1e6)
    line = sw.verdict(["profit"])[0]
    low, high = line.split("k=1 minus the best: ")[1].split(", 95% CI")[0].split(" to ")
    assert low.startswith("−") and high.startswith("+")
    assert float(low[2:-1]) == pytest.approx(-row["diff_low"] / 1e6, abs=0.01)
    assert float(high[2:-1]) == pytest.approx(row["diff_high"] / 1e6, abs=0.01)


def test_exact_ties_prefer_the_smallest_value_whatever_the_order() -> None:
    same = [110e6, 112e6, 108e6]
    sw = Sweep(keys=["k"], points=[{"k": 8}, {"k": 6}, {"k": 4}, {"k": 2}],
               labels=["k=8", "k=6", "k=4", "k=2"],
               results=[_Fake(same), _Fake(same), _Fake(same), _Fake([90e6, 91e6, 89e6])])
    assert sw.best() == {"k": 4}
    line = sw.verdict(["profit"])[0]
    assert line.startswith("profit is highest at k=4 (€110.00M); k=6 and 8 give exactly the "
                           "same profit in every replication")
    assert "edge" not in line


def test_the_edge_is_the_smallest_or_largest_value_and_only_of_numbers() -> None:
    low, high = [90e6, 91e6, 89e6], [110e6, 112e6, 108e6]
    sw = Sweep(keys=["k"], points=[{"k": 4}, {"k": 6}, {"k": 2}], labels=["k=4", "k=6", "k=2"],
               results=[_Fake(high), _Fake(low), _Fake(low)])
    assert "edge" not in sw.verdict(["profit"])[0]  # 4 is between 2 and 6
    sw = Sweep(keys=["k"], points=[{"k": 4}, {"k": 6}, {"k": 2}], labels=["k=4", "k=6", "k=2"],
               results=[_Fake(low), _Fake(high), _Fake(low)])
    assert "at the edge of the values swept" in sw.verdict(["profit"])[0]
    sw = Sweep(keys=["s"], points=[{"s": "a"}, {"s": "b"}], labels=["s=a", "s=b"],
               results=[_Fake(high), _Fake(low)])
    assert "edge" not in sw.verdict(["profit"])[0]  # names have no beyond


def test_verdict_points_that_do_exactly_as_the_best() -> None:
    sw = _fake_sweep([90e6, 91e6, 89e6], [100e6, 102e6, 98e6], [100e6, 102e6, 98e6],
                     [100e6, 102e6, 98e6])
    line = sw.verdict(["profit"])[0]
    assert ("k=3 and 4 give exactly the same profit in every replication; clearly ahead of "
            "every other point: the nearest, k=1, has €10.00M less profit") in line


def test_one_replication_still_tells_a_point_that_does_exactly_as_the_best() -> None:
    sw = _fake_sweep([100e6], [110e6], [110e6])
    assert sw.same_as_best(2) and not sw.same_as_best(0)
    assert "k=3 gives exactly the same profit in every replication" in sw.verdict()[0]


def test_verdict_with_one_replication_has_no_interval() -> None:
    sw = _fake_sweep([100e6], [110e6])
    line = sw.verdict(["profit"])[0]
    assert line.endswith("; the next, k=1: €10.00M less profit (1 replication: no "
                         "confidence interval; run more replications)")
    t = sw.table()
    assert t["low"].isna().all() and t["diff_low"].isna().all()


def test_json_has_no_nan() -> None:
    data = _fake_sweep([100e6], [110e6]).to_json()
    text = json.dumps(data, allow_nan=False)  # raises on a NaN
    assert data["best"]["profit"] == "k=2"
    assert '"low": null' in text


# ------------------------------------------------------------------- the CLI


def test_cli_table_store_group_and_labels(store_path: Path) -> None:
    res = CliRunner().invoke(_cli(), ["sweep", BASELINE, "--vary", f"{AM}=1,2,8", "-r", "2",
                                      *SETS, "--store", str(store_path), "-w", "2"],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    out = res.stdout
    lines = out.splitlines()
    header = "\n".join(lines[1:5])
    assert "account_managers" in header and "profit − best" in header
    # (a cell too wide for its column goes on to a second line, with the first cell empty)
    rows = [ln for ln in lines if ln.startswith("│") and ln.split("│")[1].strip()]
    assert [r.split("│")[1].strip() for r in rows] == ["1", "2", "8"]
    assert rows[2].rstrip("│ ").endswith("best")  # the best point is marked
    assert "€" in rows[0] and "±" in rows[0]
    assert "profit is highest at capacity.account_managers=8" in out
    assert "has retention 4.8 points lower (95% CI 2.7–7.0 points)" in out
    group = out.strip().splitlines()[-1].split("group ")[1].split(" ")[0]
    assert f"points recorded as group {group} (kamsim report {group})" in out

    from kamsim import store
    from kamsim.report.runs import load_runs

    with store.open(store_path) as st:
        recs = st.group(group)
        labels = sorted(r.meta["label"] for r in recs)
    assert labels == [f"{AM}=1", f"{AM}=2", f"{AM}=8"]
    # the report of the group names the runs by their points
    assert sorted(r.name for r in load_runs([group], store_path)) == labels


def test_report_and_compare_of_stored_points_name_them_by_their_labels(
        store_path: Path) -> None:
    """They were "baseline #2" in the verdict and differences table, and each card told the
    base scenario's description as if it were the point's."""
    from kamsim import store
    from kamsim.compare import compare
    from kamsim.report.html import report_context
    from kamsim.report.runs import load_runs

    res = CliRunner().invoke(_cli(), ["sweep", BASELINE, "--vary", f"{AM}=2,8", "-r", "2",
                                      *SETS, "--store", str(store_path), "-w", "1", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    labels = [f"{AM}=2", f"{AM}=8"]
    ctx = report_context(load_runs([data["group"]], store_path))
    text = json.dumps(ctx["comparison"])
    assert "#2" not in text and labels[1] in " ".join(ctx["comparison"]["verdict"])
    assert {r["scenario"] for r in ctx["comparison"]["rows"]} <= set(labels)
    assert [r["label"] for r in ctx["runs"]] == labels
    assert all(r["description"].startswith("Base scenario baseline: ") for r in ctx["runs"])
    ids = [p["run_id"] for p in data["points"]]
    cmp = compare(ids, store=store_path)
    assert cmp.names == labels
    with store.open(store_path) as st:  # (a run of its own keeps its scenario's name)
        assert st.get(ids[0]).summary["scenario"] == "baseline"


def test_cli_marks_points_that_do_exactly_as_the_best() -> None:
    # 8 and 30 account managers both give 300 accounts all the service they ask for
    res = CliRunner().invoke(_cli(), ["sweep", BASELINE, "--vary", f"{AM}=2,8,30", "-r", "2",
                                      *SETS, "--no-store", "-w", "1"])
    assert res.exit_code == 0, res.output
    rows = [ln for ln in res.stdout.splitlines()
            if ln.startswith("│") and ln.split("│")[1].strip()]
    assert [r.rstrip("│ ").split("│")[-1].strip() for r in rows][1:] == ["best", "same"]
    assert f"{AM}=30 gives exactly the same profit in every replication" in res.stdout


def test_cli_json(store_path: Path) -> None:
    res = CliRunner().invoke(_cli(), ["sweep", BASELINE, "--vary", f"{AM}=1,8", "-r", "2",
                                      *SETS, "--store", str(store_path), "-w", "1", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {"scenario", "seed", "replications", "keys", "points", "best", "rows", "verdict",
            "group"} <= set(data)
    assert [p["values"] for p in data["points"]] == [{AM: 1}, {AM: 8}]
    assert data["best"]["profit"] == f"{AM}=8"
    from kamsim import store

    with store.open(store_path) as st:
        ids = sorted(r.run_id for r in st.group(data["group"]))
    assert ids == sorted(p["run_id"] for p in data["points"])


def _bad(args: list[str], store_path: Path) -> list[str]:
    res = CliRunner().invoke(_cli(), ["sweep", BASELINE, *args, "-r", "2",
                                      "--store", str(store_path), "-w", "1"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert not store_path.exists()  # nothing ran, nothing was recorded
    lines = res.stderr.splitlines()
    assert lines[-1].endswith("found; nothing was written.")
    return lines[:-1]


def test_bad_values_are_located_all_at_once(store_path: Path) -> None:
    # an unknown key (every point has it: told once, at the key) and a value that is bad
    # at one point only (told at that value, naming it), from two --vary at once
    lines = _bad(["--vary", "capacity.foo=1,2", "--vary", f"{AM}=3,-1", *SETS], store_path)
    assert lines == [
        "--vary[0]:1:1: unknown key 'foo' (expected one of: account_managers, "
        "am_hours_per_month, budget_per_year, exec_hours_per_month, executives, "
        "specialist_hours_per_month, specialists, support)",
        "--vary[1]:1:29: at capacity.account_managers=-1: capacity.account_managers: Input "
        "should be greater than or equal to 0, got -1 (a number >= 0.0)",
    ]


def test_a_key_in_both_set_and_vary_or_twice_in_vary(store_path: Path) -> None:
    lines = _bad(["--vary", "horizon_months=12,24", "--vary", f"{AM}=1,2", "--vary",
                  f"{AM}=3", *SETS], store_path)
    assert lines == [
        "--vary[0]:1:1: horizon_months is also given by --set[1] (each key either set or "
        "varied)",
        "--vary[2]:1:1: capacity.account_managers is already varied by --vary[1] (each key "
        "varied once)",
    ]


def test_the_seed_is_not_swept(store_path: Path) -> None:
    # every point shares the seed (it builds the portfolio and pairs the replications):
    # points at other seeds would all be run at the first one's
    lines = _bad(["--vary", "seed=1,2", *SETS], store_path)
    assert lines == [
        "--vary[0]:1:1: the seed is not a setting to sweep: every point shares it, which is "
        "what pairs them (--seed N for another seed, -r N for more random futures)"]


@pytest.mark.parametrize(("vary", "col", "text"), [
    (f"{AM}=20:30", 27, "20:30"),    # YAML 1.1 reads it as the base-60 number 1230
    (f"{AM}=2:4,6", 27, "2:4"),      # 124, and 6
    (f"{AM}=1:2:3:4", 27, "1:2:3:4"),
])
def test_a_colon_that_is_not_a_whole_range_is_refused(vary: str, col: int, text: str,
                                                      store_path: Path) -> None:
    lines = _bad(["--vary", vary, *SETS], store_path)
    assert lines == [f"--vary[0]:1:{col}: {text!r} is not a range or a value "
                     "(START:STOP:STEP, or values separated by commas)"]


def test_a_zero_padded_value_is_not_read_as_octal(store_path: Path) -> None:
    lines = _bad(["--vary", f"{AM}=012,3", *SETS], store_path)
    assert lines == ["--vary[0]:1:27: '012' would be read as the octal number 10 (a decimal "
                     "number, or quoted text)"]


def test_settings_of_the_run_are_not_swept(store_path: Path) -> None:
    """The study takes its replications from the first point and the table one confidence
    level: varying them was accepted and every point run alike."""
    lines = _bad(["--vary", "replications=2,4", "--vary", "confidence=0.9,0.99", "--vary",
                  "name=a,b", *SETS], store_path)
    assert lines == [
        "--vary[0]:1:1: replications are not a setting to sweep: every point runs the same "
        "number, so that they are paired (-r N for every point)",
        "--vary[1]:1:1: the confidence level is not a setting to sweep: the table and verdict "
        "give every point's interval at one level (--set confidence=0.9 for every point)",
        "--vary[2]:1:1: the scenario's name is not a setting to sweep: it changes no figure "
        "(each point is named after its values) (--set name=... for every point)",
    ]


def test_bad_values_and_the_points_problems_come_together(store_path: Path) -> None:
    """A value that does not parse no longer hides the problems of the points whose values
    did (the unknown --set key, the value x)."""
    lines = _bad(["--set", "capacity.bogus=1", "--vary", f"{AM}=1,,3", "--vary",
                  "capacity.executives=2,x", *SETS], store_path)
    assert lines[0].startswith("--set[0]:1:10: unknown key 'bogus'")
    assert lines[1:] == [
        "--vary[0]:1:29: --vary capacity.account_managers has an empty value (values "
        "separated by commas)",
        "--vary[1]:1:23: at capacity.executives=x: capacity.executives: Input should be a "
        "valid number, unable to parse string as a number, got 'x' (a number)",
    ]


def test_a_seed_the_store_cannot_hold_is_refused_by_the_option(store_path: Path) -> None:
    # (as run, compare and trace do: the store keeps seeds as 64-bit integers)
    from kamsim.cli.main import cli

    res = CliRunner().invoke(cli, ["sweep", BASELINE, "--vary", f"{AM}=1,2", *SETS,
                                   "--seed", str(2**63), "--store", str(store_path)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "--seed" in res.output
    assert not store_path.exists()


def test_too_many_points(store_path: Path) -> None:
    lines = _bad(["--vary", f"{AM}=1:15:1", "--vary", "capacity.executives=1:15:1", *SETS],
                 store_path)
    assert lines == [f"--vary: 225 points (15 x 15) are more than a sweep takes (at most "
                     f"{MAX_POINTS} points in all)"]
    lines = _bad(["--vary", f"{AM}=1:1000:1", *SETS], store_path)
    assert lines == [f"--vary[0]:1:27: range '1:1000:1' has 1000 values, more than a sweep "
                     f"takes (at most {MAX_POINTS} points in all)"]


def test_bad_vary_syntax(store_path: Path) -> None:
    lines = _bad(["--vary", "horizon_months", "--vary", f"{AM}=1:5:0", "--vary",
                  "capacity.executives=1,,1", *SETS], store_path)
    assert lines == [
        "--vary[0]:1:1: --vary 'horizon_months' has no '=' (KEY=V1,V2,... or "
        "KEY=START:STOP:STEP)",
        "--vary[1]:1:27: range '1:5:0' has a step of 0 (a step that moves from START "
        "towards STOP)",
        "--vary[2]:1:23: --vary capacity.executives has an empty value (values separated by "
        "commas)",
        "--vary[2]:1:24: value '1' of capacity.executives is given twice (each value once)",
    ]


def test_input_error_from_the_library() -> None:
    with pytest.raises(InputError) as exc:
        sweep(BASELINE, [f"{AM}=2,-3,-4"], overrides=SMALL)
    assert [p.loc.col for p in exc.value.problems] == [29, 32]


def test_dask_tasks_of_a_sweep_are_about_four_per_worker_in_all() -> None:
    from kamsim.cluster import chunk_plan

    assert len(chunk_plan(20, 2)) == 8  # one scenario: as before
    # eight points on two workers: one task per point, not eight per point
    assert chunk_plan(20, 2, 8) == [list(range(20))]
    assert len(chunk_plan(20, 2, 3)) == 3


def test_kamsim_sweep_is_the_function_whichever_is_imported_first() -> None:
    import subprocess
    import sys

    code = ("import kamsim, sys; f = kamsim.sweep; import kamsim.sweep as m; "
            "assert 'kamsim.sweep' in sys.modules and callable(kamsim.sweep); "
            "assert f is m.sweep and 'sweep' in dir(kamsim); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_cli_imports_nothing_heavy_for_help() -> None:
    import subprocess
    import sys

    code = ("import sys; from kamsim.cli import commands; "
            "print(sorted(m for m in ('numpy', 'pandas', 'kamsim.sweep') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=False)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_problem_in_a_file_only_some_points_use_names_their_value(store_path: Path) -> None:
    lines = _bad(["--vary", "rules.tiering=../rules/tiering.yaml,"
                  "../tests/bad/dangling_tier_row.yaml", "--vary", f"{AM}=20,22", *SETS],
                 store_path)
    assert len(lines) == 1
    # located in the rule file, and naming the value that brings it in (not every point)
    assert lines[0].startswith(f"{REPO}/scenarios/../tests/bad/dangling_tier_row.yaml:12:13: "
                               "at rules.tiering=../tests/bad/dangling_tier_row.yaml: unknown "
                               "name 'importent'")


def test_a_problem_of_some_combinations_names_the_points() -> None:
    """A --vary value that is bad only with some values of another key names those points
    (told from its problems as load_scenario gives them)."""
    from kamsim.errors import Location
    from kamsim.sweep import _located

    axes = parse_vary(["a=1,2", "b=x,y"])
    grid = [(0, 0), (0, 1), (1, 0), (1, 1)]
    labels = ["a=1, b=x", "a=1, b=y", "a=2, b=x", "a=2, b=y"]
    found = {("--vary[0]", "too big", None): {3: Location("--vary[0]", 1, 5)},
             ("--vary[1]", "unknown", None): {p: Location("--vary[1]", 1, 3) for p in range(4)},
             ("--vary[0]", "odd", None): {1: Location("--vary[0]", 1, 5),
                                          3: Location("--vary[0]", 1, 5)}}
    got = [p.format() for p in _located(found, axes, grid, labels)]
    assert got == ["--vary[0]:1:5: at a=2, b=y: too big", "--vary[1]:1:1: unknown",
                   "--vary[0]:1:3: at a=1, b=y: odd", "--vary[0]:1:5: at a=2, b=y: odd"]


# ---------------------------------------------------------------- each file read once


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each YAML and CSV file is read (parsed), by file name."""
    import kamsim.dmu
    import kamsim.portfolio
    from kamsim.spec import load

    reads: dict[str, int] = {}

    def counted(module: Any, name: str) -> None:
        real = getattr(module, name)

        def spy(path: Any, *args: Any, **kw: Any) -> Any:
            reads[Path(path).name] = reads.get(Path(path).name, 0) + 1
            return real(path, *args, **kw)

        monkeypatch.setattr(module, name, spy)

    counted(load, "load_yaml")
    counted(kamsim.portfolio, "read_portfolio_csv")
    counted(kamsim.dmu, "read_contacts_csv")
    return reads


def test_a_sweep_reads_each_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking a sweep's points parsed the scenario and every rule and data file again for
    every point; now each once, and every point is still what loading it alone gives."""
    from kamsim.spec.load import load_scenario
    from kamsim.sweep import _load_points

    scenario = str(REPO / "scenarios" / "crm_import.yaml")
    reads = _counting_reads(monkeypatch)
    _points, _labels, specs = _load_points(scenario, [], parse_vary([f"{AM}=2:8:2"]))
    assert reads == {"crm_import.yaml": 1, "tiering.yaml": 1, "service_levels.yaml": 1,
                     "stages.yaml": 1, "stakeholders.yaml": 1, "accounts.csv": 1,
                     "contacts.csv": 1}
    alone = [load_scenario(scenario, [f"{AM}={n}"]) for n in (2, 4, 6, 8)]
    assert [s.digest() for s in specs] == [s.digest() for s in alone]
    assert [s.hashes for s in specs] == [s.hashes for s in alone]
    # the override applied to one point's document stays that point's
    assert [s.scenario.capacity.account_managers for s in specs] == [2, 4, 6, 8]


def _workspace(tmp_path: Path) -> Path:
    """The baseline scenario and the rule files in ``tmp_path`` (the scenario's path)."""
    (tmp_path / "rules").mkdir()
    for name in ("tiering", "service_levels", "stages", "stakeholders"):
        (tmp_path / "rules" / f"{name}.yaml").write_text(
            (REPO / "rules" / f"{name}.yaml").read_text())
    scenario = tmp_path / "s.yaml"
    scenario.write_text((REPO / "scenarios" / "baseline.yaml").read_text()
                        .replace("../rules/", "rules/"))
    return scenario


def test_a_point_that_names_another_file_reads_it(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An override of which file is read (the tiering file) reads that file for its point."""
    from kamsim.spec.load import load_scenario
    from kamsim.sweep import _load_points

    scenario = _workspace(tmp_path)
    text = (REPO / "rules" / "tiering.yaml").read_text()
    assert "description: Default" in text
    (tmp_path / "rules" / "tiering_b.yaml").write_text(
        text.replace("description: Default", "description: Another"))
    reads = _counting_reads(monkeypatch)
    axes = parse_vary(["rules.tiering=rules/tiering.yaml,rules/tiering_b.yaml"])
    _points, _labels, specs = _load_points(str(scenario), [], axes)
    assert reads["tiering.yaml"] == 1 and reads["tiering_b.yaml"] == 1
    assert [s.tiering.model_dump() for s in specs] == [
        load_scenario(scenario, [f"rules.tiering={r}"]).tiering.model_dump()
        for r in ("rules/tiering.yaml", "rules/tiering_b.yaml")]
    assert specs[0].tiering != specs[1].tiering


def test_a_file_changed_while_reading_once_is_read_again(tmp_path: Path) -> None:
    """The files kept are known by what is on disk: a file changed in the block is read
    again, not taken from before."""
    from kamsim.spec.load import load_scenario, reading_once

    scenario = _workspace(tmp_path)
    text = scenario.read_text()
    with reading_once():
        first = load_scenario(scenario)
        scenario.write_text(text.replace("name: baseline", "name: baseline_changed"))
        second = load_scenario(scenario)
    assert (first.name, second.name) == ("baseline", "baseline_changed")


def test_a_rule_file_is_hashed_from_the_bytes_parsed(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule file's recorded hash is that of the bytes parsed (BOM, CRLF and non-ASCII
    text kept as they are), not of a second read of the file, which may find another
    version of it."""
    import hashlib

    from kamsim.spec import load

    scenario = _workspace(tmp_path)
    tiering = tmp_path / "rules" / "tiering.yaml"
    text = tiering.read_text().replace("description: Default", "description: Défaut")
    raw = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")
    tiering.write_bytes(raw)
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counted(self: Path) -> bytes:
        if self.name == "tiering.yaml":
            reads.append(self)
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counted)
    spec = load.load_scenario(scenario)
    assert spec.hashes[next(k for k in spec.hashes if k.endswith("tiering.yaml"))] == \
        hashlib.sha256(raw).hexdigest()
    assert len(reads) == 1  # (parsed, and not read again to be hashed)
