"""A results folder read back by ``kamsim report`` and ``kamsim plot``: whatever in it the
report cannot use is told as one located line per problem (exit 2, nothing written).

A summary.json with a non-numeric confidence, a truncated Parquet
table or a missing one ended both commands in a traceback; a folder missing one table of a
``kamsim run --out`` folder (which has the CSV copies too) was called a CSV export."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.timeout(300)


def kamsim(*args: str) -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers the command groups)
    from kamsim.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def folder(small_baseline_result: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder as ``kamsim run --out`` writes it (treat it as read-only)."""
    from kamsim.io import write_results

    return write_results(small_baseline_result, tmp_path_factory.mktemp("res") / "base")


def _summary(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        s = json.loads((d / "summary.json").read_text())
        change(s)
        (d / "summary.json").write_text(json.dumps(s, indent=2))
    return edit


def _table(name: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        import duckdb

        path = str(d / f"{name}.parquet")
        con = duckdb.connect()
        frame = change(con.execute("SELECT * FROM read_parquet(?)", [path]).df())  # noqa: F841
        con.execute(f"COPY frame TO '{path}' (FORMAT PARQUET)")
        con.close()
    return edit


def _truncate(d: Path) -> None:
    data = (d / "accounts.parquet").read_bytes()
    (d / "accounts.parquet").write_bytes(data[: len(data) // 2])


def _two_problems(d: Path) -> None:
    (d / "churn.parquet").write_text("not parquet")
    _summary(lambda s: s.update(seed="42"))(d)


# case -> (change to the folder, the problem lines: file, then a bit of what is wrong)
BAD: dict[str, tuple[Callable[[Path], None], list[tuple[str, str]]]] = {
    "confidence not a number": (_summary(lambda s: s.update(confidence="high")),
                                [("summary.json", 'confidence is "high" (a number')]),
    "mean not a number": (_summary(lambda s: s["profit"].update(mean="1,2")),
                          [("summary.json", "profit.mean is")]),
    "tier figures not an object": (_summary(lambda s: s.update(by_tier=[1, 2])),
                                   [("summary.json", "by_tier is [1, 2]")]),
    "older kamsim: no tier figures": (_summary(lambda s: s.pop("by_tier")),
                                      [("summary.json", "by_tier missing")]),
    "summary not JSON": (lambda d: (d / "summary.json").write_text('{"scenario": "x",\n'),
                         [("summary.json:2:1", "not JSON")]),
    "resolved scenario not JSON": (
        lambda d: (d / "scenario.resolved.json").write_text("[1, 2"),
        [("scenario.resolved.json:1:6", "not JSON")]),
    "truncated table": (_truncate, [("accounts.parquet", "cannot be read as a Parquet table")]),
    "missing table": (lambda d: (d / "stage_mix.parquet").unlink(),
                      [("stage_mix.parquet", "missing")]),
    "table without a column": (_table("timeseries", lambda df: df.drop(columns="profit")),
                               [("timeseries.parquet", "has no column profit")]),
    "column of text": (_table("utilisation", lambda df: df.astype({"utilisation": str})),
                       [("utilisation.parquet", "column utilisation is not numbers")]),
    # tables each well formed but not of one run (copied in from another run's folder):
    # an IndexError, a ValueError or numpy's empty-mean warnings before
    "accounts of a longer run": (
        _table("accounts", lambda df: df.assign(churn_period=df["churn_period"].where(
            df.index != 0, 59))),
        [("accounts.parquet", "churn_period 59 beyond the horizon of 24 months")]),
    "a starting tier the timeseries has not": (
        _table("accounts", lambda df: df.assign(initial_tier=df["initial_tier"].where(
            df.index != 0, "gold"))),
        [("accounts.parquet", "initial_tier 'gold' is none of the timeseries' tiers")]),
    "tiers that are numbers": (_table("stage_mix", lambda df: df.assign(tier=1)),
                               [("stage_mix.parquet", "column tier is not text")]),
    "timeseries without rows": (_table("timeseries", lambda df: df.iloc[:0]),
                                [("timeseries.parquet", "no rows")]),
    "accounts and utilisation without rows": (
        lambda d: (_table("accounts", lambda df: df.iloc[:0])(d),
                   _table("utilisation", lambda df: df.iloc[:0])(d)),
        [("accounts.parquet", "no rows"), ("utilisation.parquet", "no rows")]),
    # stage tables of another ladder than the resolved scenario's were drawn empty, unsaid
    "stages of another ladder": (
        lambda d: (_table("stage_mix", lambda df: df.assign(stage="courtship"))(d),
                   _table("stage_flows", lambda df: df.assign(to_stage=df["to_stage"].where(
                       df.index != 0, "wooed")))(d)),
        [("stage_flows.parquet", "stage 'wooed' is none of the resolved scenario's stages"),
         ("stage_mix.parquet", "stage 'courtship' is none of the resolved scenario's stages")]),
    "two problems": (_two_problems, [("churn.parquet", "cannot be read"),
                                     ("summary.json", 'seed is "42"')]),
}


def _bad_folder(folder: Path, tmp_path: Path, case: str) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    BAD[case][0](bad)
    return bad


def _refused(res: Any, bad: Path, lines: list[tuple[str, str]]) -> None:
    out = res.output.splitlines()
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert len(out) == len(lines) + 1, res.output  # then "n problems found; ..."
    for line, (where, what) in zip(out, lines, strict=False):
        assert line.startswith(f"{bad / where}: "), line
        assert what in line, line
    assert out[-1].endswith("nothing was written.")


@pytest.mark.parametrize("case", list(BAD))
def test_plot_refuses_a_bad_folder_with_located_lines(folder: Path, tmp_path: Path,
                                                      case: str) -> None:
    bad = _bad_folder(folder, tmp_path, case)
    res = kamsim("plot", str(bad), "--out", str(tmp_path / "charts"), "--format", "svg")
    _refused(res, bad, BAD[case][1])
    assert not (tmp_path / "charts").exists()


@pytest.mark.parametrize("case", list(BAD))
def test_report_refuses_a_bad_folder_with_located_lines(folder: Path, tmp_path: Path,
                                                        case: str) -> None:
    bad = _bad_folder(folder, tmp_path, case)
    res = kamsim("report", str(bad), "--out", str(tmp_path / "r.html"))
    _refused(res, bad, BAD[case][1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def test_the_problems_of_every_folder_are_told_at_once(folder: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(folder, one)
    shutil.copytree(folder, two)
    (one / "churn.parquet").unlink()
    _summary(lambda s: s.update(replications=0))(two)
    res = kamsim("report", str(one), str(two), "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 2, res.output
    assert res.output.splitlines() == [
        f"{one / 'churn.parquet'}: missing (churn.parquet as kamsim run --out or kamsim runs "
        "export writes it)",
        f"{two / 'summary.json'}: replications is 0 (a whole number of at least 1)",
        "2 problems found; nothing was written."]
    assert not (tmp_path / "r.html").exists()


def test_a_folder_from_another_version_is_read(folder: Path, tmp_path: Path) -> None:
    """Fields a newer kamsim adds are left alone; those an older one did not write
    (currency, confidence, fingerprint) take the report's defaults."""
    d = tmp_path / "other"
    shutil.copytree(folder, d)

    def change(s: dict[str, Any]) -> None:
        s["from_the_future"] = {"x": 1}
        s["retention"]["median"] = 0.5
        for k in ("currency", "confidence", "portfolio_fingerprint", "churn_causes"):
            s.pop(k)

    _summary(change)(d)
    _table("accounts", lambda df: df.assign(new_column=1))(d)
    res = kamsim("report", str(d), "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").is_file()


def test_a_folder_that_is_none_of_kamsims_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = kamsim("plot", str(tmp_path / "empty"), "--out", str(tmp_path / "charts"))
    assert res.exit_code == 2
    assert res.output.startswith(f"error: {tmp_path / 'empty'}: not a kamsim results folder")
    assert len(res.output.splitlines()) == 1
    assert not (tmp_path / "charts").exists()


def test_a_resolved_scenario_of_the_wrong_shape_is_located(folder: Path, tmp_path: Path) -> None:
    d = tmp_path / "bad"
    shutil.copytree(folder, d)
    res_path = d / "scenario.resolved.json"
    resolved = json.loads(res_path.read_text())
    resolved["scenario"]["capacity"]["account_managers"] = "twelve"  # shown as written
    resolved["rules"]["stages"]["stages"] = [{"label": "x"}]
    res_path.write_text(json.dumps(resolved))
    res = kamsim("plot", str(d), "--out", str(tmp_path / "charts"))
    assert res.exit_code == 2, res.output
    assert res.output.splitlines() == [
        f"{res_path}: rules.stages.stages is not a list of named stages (the stage ladder's "
        "stages, bottom to top)",
        "1 problem found; nothing was written."]
    assert not (tmp_path / "charts").exists()


def test_a_figure_of_the_resolved_scenario_that_is_no_number_is_shown_as_written(
        folder: Path, tmp_path: Path) -> None:
    """The inputs table writes capacities and the portfolio size with number formats: a value
    of another type (the folder is the user's) is shown as it is, not a traceback; every
    figure the table shows, not a list of them kept beside it (support.agents was left out)."""
    d = tmp_path / "odd"
    shutil.copytree(folder, d)
    res_path = d / "scenario.resolved.json"
    resolved = json.loads(res_path.read_text())
    cap = resolved["scenario"]["capacity"]
    cap["account_managers"], cap["support"]["hours_per_month"] = "twelve", [160]
    cap["support"]["agents"] = "a few"
    resolved["scenario"]["portfolio"] = {"generate": {"accounts": "many"}}
    res_path.write_text(json.dumps(resolved))
    res = kamsim("report", str(d), "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 0, res.output
    page = (tmp_path / "r.html").read_text()
    for shown in ("twelve × ", "a few agents × [160] h", "many generated accounts"):
        assert shown in page, shown


def test_the_parts_of_the_resolved_scenario_the_report_reads_into_are_checked(
        folder: Path, tmp_path: Path) -> None:
    # each of these ended report and plot in a traceback (stage_order, the inputs table)
    d = tmp_path / "shapes"
    shutil.copytree(folder, d)
    res_path = d / "scenario.resolved.json"
    resolved = json.loads(res_path.read_text())
    resolved["rules"]["stages"]["uncoupled"] = "x"
    resolved["scenario"]["capacity"] = "lots"
    resolved["scenario"]["strategy"] = 7
    resolved["rule_hashes"] = [1, 2]
    res_path.write_text(json.dumps(resolved))
    d2 = tmp_path / "no_stage_rules"
    shutil.copytree(folder, d2)
    resolved = json.loads((d2 / "scenario.resolved.json").read_text())
    resolved["rules"]["stages"] = []
    (d2 / "scenario.resolved.json").write_text(json.dumps(resolved))
    for cmd, out in (("report", tmp_path / "r.html"), ("plot", tmp_path / "charts")):
        res = kamsim(cmd, str(d), str(d2), "--out", str(out))
        assert res.exit_code == 2, res.output
        assert res.output.splitlines() == [
            f"{d2 / 'scenario.resolved.json'}: rules.stages is [] (an object: the stage "
            "rules, with their stages)",
            f"{res_path}: rule_hashes is [1, 2] (an object: each rule and data file's hash by "
            "its path)",
            f"{res_path}: rules.stages.uncoupled is \"x\" (an object: the broken-down stage, "
            "with its name)",
            f"{res_path}: scenario.capacity is \"lots\" (an object: the team's capacity)",
            f"{res_path}: scenario.strategy is 7 (an object: the strategy, with its name)",
            "5 problems found; nothing was written."]
        assert not out.exists()


def test_a_folders_problems_and_unknown_runs_are_told_together(
        folder: Path, tmp_path: Path, small_baseline_result: Any) -> None:
    # "kamsim report c/trunc_parquet rzzzz" printed only "no run 'rzzzz'": the folder's
    # problems were dropped when the other ref failed
    from kamsim.store import record_runs

    bad = _bad_folder(folder, tmp_path, "truncated table")
    store = tmp_path / "runs.duckdb"
    record_runs([small_baseline_result], store)
    res = kamsim("report", str(bad), "rzzzz", "ryyyy", "--store", str(store),
                 "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 2, res.output
    out = res.output.splitlines()
    assert len(out) == 4, res.output
    assert out[0].startswith(f"{bad / 'accounts.parquet'}: cannot be read as a Parquet table")
    assert out[1].startswith(f"ryyyy: no run 'ryyyy' in store {store}")
    assert out[2].startswith(f"rzzzz: no run 'rzzzz' in store {store}")
    assert out[3] == "3 problems found; nothing was written."
    assert not (tmp_path / "r.html").exists()
    # one unknown ref alone is told as before
    res = kamsim("report", "rzzzz", "--store", str(store), "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 2 and res.output.startswith("error: no run 'rzzzz' in store")
