"""What the report's charts draw, read back from the matplotlib figures: tiers matched by name
across runs with different tier sets, no retention line for a tier with no starting accounts,
months (not periods) for weekly runs, the run's currency and confidence, and the words on
pairing in the report and in compare's table."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kamsim.report import charts

REPO = Path(__file__).resolve().parents[1]
SMALL = ["portfolio.generate.accounts=120", "horizon_months=12", "replications=3"]


def _cli():
    from kamsim.cli import commands  # noqa: F401  (registers the commands)
    from kamsim.cli.main import cli

    return cli


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A scenario tree with the shipped rules, a two-tier rule set (key, general) and a rule
    set in USD, each with a copy of ``tiered.yaml`` that uses it."""
    root = tmp_path_factory.mktemp("tree")
    shutil.copytree(REPO / "rules", root / "rules")
    shutil.copy(REPO / "tests" / "rules_degenerate" / "tiering_no_key.yaml", root / "rules")
    shutil.copytree(REPO / "rules", root / "rules2")
    shutil.copytree(REPO / "rules", root / "rules_usd")
    t = root / "rules2" / "tiering.yaml"
    s = t.read_text().replace("tiers: [key, important, general]", "tiers: [key, general]")
    t.write_text(re.sub(r"    # Important:.*?tier: important\n", "", s, flags=re.S))
    sl = root / "rules2" / "service_levels.yaml"
    s = sl.read_text()
    sl.write_text(s[:s.index("  important:")] + s[s.index("  general:"):])
    usd = root / "rules_usd" / "service_levels.yaml"
    usd.write_text(usd.read_text().replace("currency: EUR", "currency: USD"))
    (root / "sc").mkdir()
    base = (REPO / "scenarios" / "tiered.yaml").read_text()
    (root / "sc" / "tiered.yaml").write_text(base)
    (root / "sc" / "two.yaml").write_text(
        base.replace("../rules/tiering", "../rules2/tiering")
        .replace("../rules/service_levels", "../rules2/service_levels")
        .replace("\nname: tiered", "\nname: two_tiers"))
    (root / "sc" / "usd.yaml").write_text(
        base.replace("../rules/service_levels", "../rules_usd/service_levels")
        .replace("\nname: tiered", "\nname: in_usd"))
    return root


def _run(path: Path, *extra: str):
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    return simulate(load_scenario(path, [*SMALL, *extra]), workers=1)


@pytest.fixture(scope="module")
def three(tree):
    return _run(tree / "sc" / "tiered.yaml")


@pytest.fixture(scope="module")
def two(tree):
    return _run(tree / "sc" / "two.yaml")


def _frames(*results):
    from kamsim.compare import unique_names

    names = unique_names([r.scenario for r in results])
    return {n: r.to_frames() for n, r in zip(names, results, strict=True)}


@pytest.fixture
def no_rendering(monkeypatch):
    """Figures are built but not rendered to SVG or PNG (seconds each on a shared machine):
    for tests of what reaches the charts, not of the files."""
    from kamsim.report import figfiles

    monkeypatch.setattr(figfiles, "figure_svg", lambda fig, prefix: "<svg></svg>")
    monkeypatch.setattr(figfiles, "figure_bytes", lambda fig, fmt, name: b"")


def _panels(fig) -> dict[str, object]:
    return {ax.get_title(loc="left"): ax for ax in fig.axes if ax.get_visible()}


def _line(ax, label: str) -> np.ndarray:
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return np.asarray(line.get_ydata(), dtype=float)


def _profit_by_period(result, tier: str) -> np.ndarray:
    ts = result.timeseries()
    ts = ts[ts["tier"] == tier]
    return ts.groupby(["replication", "period"])["profit"].sum().groupby("period").mean() \
        .to_numpy()


@pytest.mark.parametrize("order", ["three_first", "two_first"])
def test_runs_with_different_tier_sets_are_matched_by_tier_name(three, two, order):
    # used to raise IndexError (three tiers first), or draw the three-tier run's
    # "important" in the "general" panel (two tiers first)
    runs = [three, two] if order == "three_first" else [two, three]
    frames = _frames(*runs)
    figs = charts.all_charts(frames)
    panels = _panels(figs["profit_over_time"])
    assert set(panels) == {"all accounts", "key", "important", "general"}
    for tier in ("key", "general"):
        for r in runs:
            assert np.allclose(_line(panels[tier], r.scenario), _profit_by_period(r, tier))
    # a run without a tier draws nothing in its panel
    assert [ln.get_label() for ln in panels["important"].get_lines()] == ["tiered"]
    assert {ln.get_label() for ln in _panels(figs["retention"])["important"].get_lines()} \
        == {"tiered"}
    # cost against profit: no bar (not a bar of 0) for the missing tier
    profit_ax = _panels(figs["cost_vs_profit"])["Profit over the horizon"]
    bars = {c.get_label(): c for c in profit_ax.containers}
    assert len(bars["two_tiers"]) == 2 and len(bars["tiered"]) == 3
    # churn causes: a tier has the same colour in every run's panel
    colours: dict[str, set] = {}
    for ax in figs["churn_causes"].axes:
        for c in ax.containers:
            colours.setdefault(c.get_label(), set()).add(c.patches[0].get_facecolor())
    assert all(len(v) == 1 for v in colours.values()), colours


def test_plot_and_report_of_runs_with_different_tier_sets(three, two, tmp_path, no_rendering):
    from kamsim.io import write_results

    a = write_results(three, tmp_path / "a")
    b = write_results(two, tmp_path / "b")
    res = CliRunner().invoke(_cli(), ["plot", str(a), str(b), "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(_cli(), ["report", str(a), str(b), "--out",
                                      str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output


def test_retention_draws_no_line_for_a_tier_with_no_starting_accounts(tree, three):
    # used to draw 100% at month 0 falling to 0% at month 1
    nokey = _run(tree / "sc" / "tiered.yaml", "rules.tiering=../rules/tiering_no_key.yaml")
    nokey_only, both = charts.retention(_frames(nokey)), charts.retention(_frames(three, nokey))
    key = _panels(nokey_only)["key"]
    assert key.get_lines() == []
    assert [t.get_text() for t in key.texts] == ["n/a: no key accounts at the start"]
    key = _panels(both)["key"]
    assert [ln.get_label() for ln in key.get_lines()] == ["tiered"]
    assert [t.get_text() for t in key.texts] == ["n/a: no key accounts at the start in tiered #2"]
    for name in ("important", "general", "all accounts"):
        assert _line(_panels(nokey_only)[name], "tiered")[0] == 1.0


def test_profit_over_time_says_which_tier_its_lines_are_by(three):
    # the lines are by the tier accounts were in that month (all the timeseries keeps per
    # month), which the caption used to call the tier they started in
    panels = _panels(charts.profit_over_time(_frames(three)))
    for tier in three.tiers:
        assert np.allclose(_line(panels[tier], "tiered"), _profit_by_period(three, tier))
    title, how = charts.caption("profit_over_time")
    assert "current tier" in title and "started in" not in how.split("(")[0]
    assert "the tier accounts were in that month" in how
    assert "starting tier" in charts.caption("retention")[0]
    assert "by starting tier" in charts.caption("cost_vs_profit")[1]


def test_a_weekly_run_is_drawn_per_month_against_the_month(tree):
    # used to draw profit per week against the week's index on a "month" axis
    weekly = _run(tree / "sc" / "tiered.yaml", "period=week")
    dt = 12 / 52
    figs = charts.all_charts(_frames(weekly))
    ax = _panels(figs["profit_over_time"])["all accounts"]
    (line,) = ax.get_lines()
    ts = weekly.timeseries()
    per_week = ts.groupby(["replication", "period"])["profit"].sum().groupby("period").mean()
    assert np.allclose(line.get_ydata(), per_week.to_numpy() / dt)
    assert np.allclose(line.get_xdata(), np.arange(per_week.shape[0]) * dt)
    for ax in figs["stage_flows"].axes:
        for ln in ax.get_lines():
            x = np.asarray(ln.get_xdata())
            assert x.max() < 12 and np.allclose(np.diff(x), dt)
    assert max(ln.get_xdata()[-1] for ln in _panels(figs["retention"])["all accounts"]
               .get_lines()) == pytest.approx(12.0)


def _band_at_start(ax) -> tuple[float, float]:
    (band,) = ax.collections
    v = band.get_paths()[0].vertices
    at0 = v[np.isclose(v[:, 0], 0.0)][:, 1]
    return float(at0.min()), float(at0.max())


def test_charts_use_the_runs_currency_and_confidence(tree, three):
    from kamsim.stats import t_ppf

    usd = _run(tree / "sc" / "usd.yaml")
    fig = charts.profit_over_time(_frames(usd), confidence=0.8, currency=usd.currency)
    ax = _panels(fig)["all accounts"]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("$" in t and "€" not in t for t in labels), labels
    ts = usd.timeseries()
    first = ts[ts["period"] == 0].groupby("replication")["profit"].sum().to_numpy()
    half = t_ppf(0.9, 2) * first.std(ddof=1) / np.sqrt(3)
    lo, hi = _band_at_start(ax)
    assert (lo, hi) == pytest.approx((first.mean() - half, first.mean() + half))
    assert "80% interval" in charts.caption("retention", 0.8)[1]


def test_report_and_plot_pass_the_first_runs_confidence_and_currency(tree, tmp_path,
                                                                     monkeypatch, no_rendering):
    from kamsim.io import write_results
    from kamsim.report.html import report_context

    usd = _run(tree / "sc" / "usd.yaml", "confidence=0.8")
    seen = []
    real = charts.all_charts

    def spy(*args, **kwargs):
        seen.append((kwargs.get("confidence"), kwargs.get("currency")))
        return real(*args, **kwargs)

    monkeypatch.setattr(charts, "all_charts", spy)
    ctx = report_context([usd])
    assert all("95%" not in c["how"] for c in ctx["charts"])
    assert any("80%" in c["how"] for c in ctx["charts"])
    res = CliRunner().invoke(_cli(), ["plot", str(write_results(usd, tmp_path / "u")),
                                      "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert seen == [(0.8, "USD"), (0.8, "USD")]


def test_runs_in_different_currencies_are_refused(tree, three, tmp_path, store_path):
    from kamsim.io import write_results
    from kamsim.store import record_run

    usd = _run(tree / "sc" / "usd.yaml")
    a, u = write_results(three, tmp_path / "a"), write_results(usd, tmp_path / "u")
    line = "error: runs in different currencies cannot be compared (tiered in EUR, in_usd in USD)"
    for args, out in ((["report", str(a), str(u), "--out", str(tmp_path / "r.html")],
                       tmp_path / "r.html"),
                      (["plot", str(a), str(u), "--out", str(tmp_path / "p")], tmp_path / "p")):
        res = CliRunner().invoke(_cli(), args)
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(line), res.output
        assert not out.exists()
    ids = [record_run(r, store_path) for r in (three, usd)]
    res = CliRunner().invoke(_cli(), ["compare", *ids, "--store", str(store_path)])
    assert res.exit_code == 2 and res.output.strip().splitlines()[0].startswith(line)
    assert len(res.output.strip().splitlines()) == 1
    # scenario files: refused before anything runs, nothing recorded
    res = CliRunner().invoke(_cli(), ["compare", str(tree / "sc" / "tiered.yaml"),
                                      str(tree / "sc" / "usd.yaml"), "-r", "1", "--store",
                                      str(tmp_path / "fresh.duckdb")])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [res.output.strip()] \
        and res.output.startswith(line)
    assert not (tmp_path / "fresh.duckdb").exists()


def test_unpaired_runs_are_not_called_paired(three, tree, store_path, no_rendering):
    from kamsim.report.html import render_report, report_context
    from kamsim.store import record_run

    other_seed = _run(tree / "sc" / "tiered.yaml", "seed=5", "replications=2")
    html = render_report([three, three, other_seed])
    assert "Every scenario saw the same random futures" not in html
    assert "Mean over 3 simulated futures" not in html
    assert "tiered #3 (" in html and "Welch" in html
    ctx = report_context([three, three, other_seed])
    sub = ctx["comparison"]["pairing"]
    assert "Every scenario saw the same random futures" not in sub
    assert sub.startswith("tiered #2 saw the same random futures as the reference, so its "
                          "differences are paired.")
    assert "tiered #3 (" in sub and "not paired" in sub.lower()
    assert ctx["means_over"] == ("Means over tiered: 3 simulated futures of 12 months; "
                                 "tiered #2: 3 simulated futures of 12 months; tiered #3: 2 "
                                 "simulated futures of 12 months")
    assert report_context([three, three])["comparison"]["pairing"] == (
        "Every scenario saw the same random futures as the reference (tiered), so the "
        "differences are paired.")
    ids = [record_run(r, store_path) for r in (three, other_seed)]
    res = CliRunner().invoke(_cli(), ["compare", *ids, "--store", str(store_path)],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    title = res.output.splitlines()[0]
    assert "paired by replication" not in title
    assert "not paired: two independent means" in title


def test_plot_is_a_library_function(three, tmp_path, monkeypatch, no_rendering):
    """`kamsim plot` is kamsim.report.write_charts (the command looped over the charts and
    made its own checks, with no Python call for it): Results in, one file per chart, and a
    folder that is a file or an unknown format refused before anything is written."""
    from kamsim.errors import RunError
    from kamsim.io import write_results
    from kamsim.report import figfiles
    from kamsim.report.figfiles import write_charts

    paths = write_charts([three], tmp_path / "p", "svg")
    assert paths == [tmp_path / "p" / f"{name}.svg" for name in charts.CHARTS]
    (tmp_path / "f").write_text("")
    for folder, fmt in ((tmp_path / "f", "png"), (tmp_path / "q", "pdf")):
        with pytest.raises(RunError):
            write_charts([three], folder, fmt)
    assert not (tmp_path / "q").exists()
    seen = []
    monkeypatch.setattr(figfiles, "write_charts",
                        lambda runs, folder, fmt, written: seen.append((len(runs), folder, fmt)))
    res = CliRunner().invoke(_cli(), ["plot", str(write_results(three, tmp_path / "a")),
                                      "--out", str(tmp_path / "c"), "--format", "svg"])
    assert res.exit_code == 0, res.output
    assert seen == [(1, tmp_path / "c", "svg")]


def test_plot_leaves_no_folder_when_a_chart_cannot_be_drawn(three, tmp_path, monkeypatch):
    """`kamsim plot --out DIR` made DIR, and wrote the charts before the one that failed
    into it: every chart is drawn before the folder is made."""
    import matplotlib.figure

    from kamsim.report.figfiles import write_charts

    calls = []

    def savefig(fig, target, **kwargs):  # (drawing is slow: the first two draw nothing)
        calls.append(target)
        if len(calls) == 3:
            raise ValueError("cannot be drawn")
        if isinstance(target, str | Path):
            Path(target).write_bytes(b"")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    with pytest.raises(ValueError, match="cannot be drawn"):
        write_charts([three], tmp_path / "p", "png")
    assert not (tmp_path / "p").exists()
    assert list(tmp_path.iterdir()) == []
