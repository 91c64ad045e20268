"""docs/results.md against what kamsim writes: every results file's columns (and JSON keys)
are documented there, and nothing else is, so the page cannot go stale. Also: one CSV
writer for `run --out` and `runs export --format csv`, and `kamsim report` on a CSV export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results.md"
TABLES = ("timeseries", "accounts", "events", "stage_mix", "stage_flows", "churn",
          "utilisation")


def documented() -> dict[str, list[str]]:
    """Section name (the first `name` of a ### heading) -> the names in the first column of
    its `| column |` or `| key |` table, in order."""
    out: dict[str, list[str]] = {}
    name = None
    rows: list[str] | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("### "):
            m = re.search(r"`([^`]+)`", line)
            name = m.group(1) if m else None
            rows = None
        elif name and re.match(r"^\| (column|key) \|", line):
            rows = out.setdefault(name, [])
        elif rows is not None and line.startswith("|"):
            m = re.match(r"^\| `([^`]+)` \|", line)
            if m:
                rows.append(m.group(1))
        elif not line.strip():
            rows = None
    return out


def _cli():
    from kamsim.cli import commands  # noqa: F401  (registers the commands)
    from kamsim.cli.main import cli

    return cli


@pytest.fixture(scope="module")
def written(tmp_path_factory, small_baseline_result):
    """The baseline's results folder, its CSV and Parquet exports from a store, and the run
    id."""
    from kamsim import store
    from kamsim.io import write_results

    tmp = tmp_path_factory.mktemp("results")
    write_results(small_baseline_result, tmp / "out")
    path = tmp / "runs.duckdb"
    rid = store.record_run(small_baseline_result, path)
    with store.open(path) as st:
        st.export(rid, "csv", tmp / "csv")
        st.export(rid, "parquet", tmp / "parquet")
    return tmp, rid


def _parquet_columns(path: Path) -> list[str]:
    import duckdb

    con = duckdb.connect()
    try:
        return [d[0] for d in con.execute("SELECT * FROM read_parquet(?) LIMIT 0",
                                          [str(path)]).description]
    finally:
        con.close()


def test_every_table_and_column_written_is_documented_and_no_other(written):
    tmp, _ = written
    doc = documented()
    for table in TABLES:
        assert table in doc, f"docs/results.md has no section for {table}"
        for folder, fmt in (("out", "csv"), ("out", "parquet"), ("csv", "csv"),
                            ("parquet", "parquet")):
            path = tmp / folder / f"{table}.{fmt}"
            cols = (path.read_text().splitlines()[0].split(",") if fmt == "csv"
                    else _parquet_columns(path))
            assert cols == doc[table], (path, cols, doc[table])
    files = {p.name for p in (tmp / "out").iterdir()}
    assert files == {f"{t}.{x}" for t in TABLES for x in ("csv", "parquet")} | {
        "summary.json", "scenario.resolved.json"}
    assert {p.name for p in (tmp / "csv").iterdir()} == {f"{t}.csv" for t in TABLES} | {
        "summary.json", "scenario.resolved.json", "run.json"}


def test_every_json_key_written_is_documented_and_no_other(written):
    tmp, _ = written
    doc = documented()
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert list(summary) == [k for k in doc["summary.json"] if k != "run_id"]
    assert json.loads((tmp / "csv" / "summary.json").read_text()) == summary
    run = json.loads((tmp / "csv" / "run.json").read_text())
    assert list(run) == doc["run.json"]
    resolved = json.loads((tmp / "out" / "scenario.resolved.json").read_text())
    text = DOC.read_text()
    section = text[text.index("### `scenario.resolved.json`"):text.index("### `run.json`")]
    assert set(resolved) == set(re.findall(r"`(\w+)`", section)) - {"set", "seed"}


def test_tier_file_columns_are_documented(tmp_path):
    res = CliRunner().invoke(_cli(), ["tier", str(REPO / "scenarios" / "baseline.yaml"),
                                      "--set", "portfolio.generate.accounts=50", "--out",
                                      str(tmp_path / "t.csv")])
    assert res.exit_code == 0, res.output
    cols = (tmp_path / "t.csv").read_text().splitlines()[0].split(",")
    assert cols == documented()["tiers"]
    # the table's revenue is a yearly rate, not a horizon's total: its header says so
    assert "revenue / year" in res.output


def test_run_out_and_runs_export_write_the_same_csv(written):
    """`run --out` wrote True and empty fields through pandas, `runs export --format csv`
    true and "" through DuckDB, for the same table."""
    tmp, _ = written
    for table in TABLES:
        assert (tmp / "out" / f"{table}.csv").read_bytes() == \
            (tmp / "csv" / f"{table}.csv").read_bytes(), table
    row = (tmp / "out" / "accounts.csv").read_text().splitlines()[1]
    assert row.endswith(",true") and ',"",' in row  # a starting account, not lost


def test_report_on_a_csv_export_says_it_needs_parquet(written, tmp_path):
    """It said "not a kamsim results folder (missing timeseries.parquet, ...)" of a folder
    kamsim itself wrote."""
    tmp, rid = written
    res = CliRunner().invoke(_cli(), ["report", str(tmp / "csv"), "--out",
                                      str(tmp_path / "r.html")])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert "a CSV export" in line and "Parquet" in line
    assert f"kamsim report {rid}" in line and f"kamsim runs export {rid} --out" in line
    assert not (tmp_path / "r.html").exists()
    # the Parquet export is what reports read
    res = CliRunner().invoke(_cli(), ["report", str(tmp / "parquet"), "--out",
                                      str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
