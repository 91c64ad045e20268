"""The HTML report and the chart files: from a fresh run, a stored run, a comparison group
and a results folder; self-contained (nothing to load from anywhere); clean errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kamsim.report.charts import CHARTS
from kamsim.report.html import render_report, write_report

REPO = Path(__file__).resolve().parents[1]


def _cli():
    from kamsim.cli import commands  # noqa: F401  (registers the commands)
    from kamsim.cli.main import cli

    return cli


def assert_self_contained(html: str) -> None:
    # no external resource of any kind: no URL, no script, no stylesheet link, no @import
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<script\b", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert "@import" not in html and "url(http" not in html
    for ref in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html, re.I):
        assert ref.startswith("#"), ref  # only references inside the page (SVG defs)


def assert_every_chart(html: str) -> None:
    for name in CHARTS:
        m = re.search(rf'<svg role="img" class="chart" data-chart="{name}"[^>]*>', html)
        assert m, f"chart {name} missing"
        assert f'id="chart-{name}"' in html


@pytest.fixture(scope="module")
def pair_results():
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    o = ["portfolio.generate.accounts=150", "horizon_months=18", "replications=3"]
    return [simulate(load_scenario(REPO / "scenarios" / f"{n}.yaml", o), workers=1)
            for n in ("equal_treatment", "tiered")]


def test_report_from_a_fresh_run(small_baseline_result, tmp_path):
    html = render_report([small_baseline_result])
    assert_self_contained(html)
    assert_every_chart(html)
    assert "Summary by tier" in html and "Verdict" not in html
    for tier in small_baseline_result.tiers:
        assert f"<td>{tier}</td>" in html
    out = write_report([small_baseline_result], tmp_path / "r.html")
    assert out.read_text() == html  # rendering is deterministic
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary left behind


def test_report_of_a_comparison_has_the_verdict(pair_results):
    html = render_report(pair_results)
    assert_self_contained(html)
    assert_every_chart(html)
    assert "Verdict" in html
    assert "than equal_treatment" in html or "vs equal_treatment" in html
    assert "Differences against equal_treatment" in html


def test_report_from_stored_run_and_group(pair_results, store_path, tmp_path):
    from kamsim.store import record_run

    ids = [record_run(r, store_path, group="gtest1") for r in pair_results]
    out = tmp_path / "one.html"
    res = CliRunner().invoke(_cli(), ["report", ids[1], "--store", str(store_path),
                                      "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert_self_contained(html)
    assert_every_chart(html)
    assert ids[1] in html
    # the run's line says where it came from and its id once ("run r… · run r…" before)
    assert f"the run store · run {ids[1]} · seed" in html
    assert f"run {ids[1]} · run" not in html

    out = tmp_path / "group.html"
    res = CliRunner().invoke(_cli(), ["report", "gtest1", "--store", str(store_path),
                                      "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "Verdict" in html and "tiered" in html and "equal_treatment" in html
    assert_every_chart(html)


def test_report_from_a_results_folder(small_baseline_result, tmp_path):
    from kamsim.io import write_results

    folder = write_results(small_baseline_result, tmp_path / "results")
    out = tmp_path / "folder.html"
    res = CliRunner().invoke(_cli(), ["report", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert_self_contained(html)
    assert_every_chart(html)
    # the folder's tables give the same summary table as the Result itself
    fresh = render_report([small_baseline_result])
    table = re.compile(r'<table class="summary">.*?</table>', re.S)
    assert table.findall(html) == table.findall(fresh)


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_plot_writes_one_file_per_chart(small_baseline_result, tmp_path, fmt, magic):
    from kamsim.io import write_results

    folder = write_results(small_baseline_result, tmp_path / "results")
    out = tmp_path / "plots"
    res = CliRunner().invoke(_cli(), ["plot", str(folder), "--out", str(out),
                                      "--format", fmt])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{name}.{fmt}" for name in CHARTS)
    for p in out.iterdir():
        assert p.read_bytes().startswith(magic)


def test_unknown_run_id_is_a_clean_error(small_baseline_result, store_path, tmp_path):
    from kamsim.store import record_run

    record_run(small_baseline_result, store_path)
    out = tmp_path / "never.html"
    res = CliRunner().invoke(_cli(), ["report", "rnosuchrun", "--store", str(store_path),
                                      "--out", str(out)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "rnosuchrun" in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in res.output
    assert not out.exists()


def test_report_needs_an_existing_folder(small_baseline_result, tmp_path):
    from kamsim.errors import RunError

    with pytest.raises(RunError, match="does not exist"):
        write_report([small_baseline_result], tmp_path / "missing" / "r.html")


def test_report_of_one_replication_and_a_tier_without_accounts():
    # no zero-width intervals from a single replication, and a tier with no accounts shows
    # n/a, not 0.0% retention, nor a difference with one
    from kamsim.experiment import simulate
    from kamsim.report.html import report_context
    from kamsim.spec.load import load_scenario

    root = Path(__file__).resolve().parents[1]
    small = ["portfolio.generate.accounts=80", "horizon_months=12", "replications=1"]
    tiered = root / "scenarios" / "tiered.yaml"
    ref = simulate(load_scenario(tiered, small), workers=1)
    nokey = simulate(load_scenario(tiered, [
        *small, "rules.tiering=../tests/rules_degenerate/tiering_no_key.yaml"]), workers=1)
    ctx = report_context([ref, nokey])
    key = next(r for r in ctx["runs"][1]["rows"] if r["tier"] == "key")
    assert key["cells"][0] == "n/a" and key["cells"][4] == "n/a"
    assert ctx["runs"][1]["notes"] == [
        "n/a: no accounts of the tier at the start (a share of none is undefined)",
        "1 replication: no interval"]
    assert "1 replication: no interval" in render_report([ref, nokey])
    rows = ctx["comparison"]["rows"]
    assert all("(" not in r["diff"] and "(" not in r["rel"] for r in rows)
    key_ret = next(r for r in rows if r["tier"] == "key" and r["metric"] == "retention")
    assert key_ret["diff"] == "n/a" and key_ret["rel"] == "" and key_ret["news"] == "unclear"
    verdict = ctx["comparison"]["verdict"][0]
    assert "CI" not in verdict and "no confidence interval" in verdict
    assert "key-account retention: n/a" in verdict
