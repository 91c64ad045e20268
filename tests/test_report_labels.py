"""The words and marks of the report and its charts: confidence levels as they are (97.5%,
not 98%), differences coloured only when their interval excludes zero, percent ticks as they
are, and which tier (starting or current) each table and chart groups by."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kamsim.report import charts
from kamsim.report.terminal import percent_label, summary_table


@pytest.mark.parametrize(("level", "label"), [(0.95, "95%"), (0.99, "99%"), (0.999, "99.9%"),
                                              (0.975, "97.5%"), (0.8, "80%"), (0.0, "0%"),
                                              (-0.0, "0%"), (0.125, "12.5%"),
                                              (1.0, "100%"), (0.9999999, "99.99999%"),
                                              (0.9999999999999999, "99.99999999999999%"),
                                              (0.99999, "99.999%"), (0.975000000001, "97.5%")])
def test_a_percent_label_has_the_decimals_the_level_has(level, label):
    assert percent_label(level) == label


def test_a_level_below_one_never_reads_100_percent():
    # rounded to 4 decimals, 0.9999999 and 0.9999999999999999 read "100%": certainty
    for k in range(1, 17):
        level = 1 - 10.0 ** -k
        if level < 1:
            assert percent_label(level) != "100%" and float(percent_label(level)[:-1]) < 100


def test_tables_and_captions_say_the_level_unrounded(small_baseline_result):
    from rich.console import Console

    summary = dict(small_baseline_result.summary(), confidence=0.975)
    console = Console(width=300, record=True)
    console.print(summary_table(summary))
    assert "97.5% interval" in console.export_text()
    assert "99.9% interval" in charts.caption("retention", 0.999)[1]


@pytest.fixture
def no_rendering(monkeypatch):
    """Figures are built but not rendered to SVG (seconds each on a shared machine)."""
    from kamsim.report import figfiles

    monkeypatch.setattr(figfiles, "figure_svg", lambda fig, prefix: "<svg></svg>")


def test_only_a_difference_whose_interval_excludes_zero_is_coloured(small_baseline_result,
                                                                    no_rendering):
    # the template once asked r.clear of a dict: dict.clear, always true, so a difference
    # that could be chance (or exactly 0) was coloured good or bad news too
    import pandas as pd

    from kamsim.report import html

    nan = float("nan")
    table = pd.DataFrame(
        [("b", "key", "retention", -0.003, -0.010, 0.005, nan, nan, nan),
         ("b", "key", "profit", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
         ("b", "key", "revenue", 5e5, 1e5, 9e5, 2.0, 0.5, 3.5),
         ("b", "key", "cost_to_serve", 5e5, 1e5, 9e5, 2.0, 0.5, 3.5),
         ("b", "key", "clv", -5e3, -9e3, -1e3, -1.0, -2.0, -0.5),
         ("b", "all accounts", "profit", 4e5, nan, nan, nan, nan, nan)],
        columns=["scenario", "tier", "metric", "diff", "diff_low", "diff_high", "rel",
                 "rel_low", "rel_high"])
    ctx = html.report_context([small_baseline_result])
    ctx["comparison"] = {"verdict": [], "reference": "a", "pairing": "", "paired": True,
                         "rows": html._diff_rows(table, "EUR"), "notes": []}
    page = html._render(ctx)
    cells = re.findall(r'<td>b</td><td>([^<]*)</td><td>([^<]*)</td>\s*<td class="(\w+)">',
                       page)
    assert cells == [("key", "retention", "unclear"), ("key", "profit", "unclear"),
                     ("key", "revenue", "good"), ("key", "cost to serve", "bad"),
                     ("key", "lifetime value / account", "bad"),
                     ("all accounts", "profit", "unclear")]


def test_differences_compare_does_not_judge_are_grey_and_the_notes_say_why(
        small_baseline_result, no_rendering):
    # the report coloured as good or bad news the differences of runs over other horizons
    # (compare: "no verdict") and lifetime values at another discount rate ("not
    # comparable"), and left out the notes compare prints under its table
    from dataclasses import replace

    from test_compare import REF, _fake

    from kamsim.compare import compare_runs
    from kamsim.report import html
    from kamsim.report.terminal import difference_notes

    ref = replace(REF, horizon_months=36.0, discount_rate=0.1)
    better = _fake("b", [110.0, 112.5, 107.5, 110.2], [0.84, 0.86, 0.82, 0.85])
    better.per_rep["clv"] = better.per_rep["clv"] * np.array([[2.0], [2.1], [1.9], [2.0]])
    cases = [(replace(better, horizon_months=36.0, discount_rate=0.1), set(),
              []),
             (replace(better, horizon_months=24.0, discount_rate=0.1),
              {"retention", "profit", "lifetime value / account"},
              ["b: no verdict, horizons differ (36 and 24 months)"]),
             (replace(better, horizon_months=36.0, discount_rate=0.3),
              {"lifetime value / account"},
              ["b: lifetime values not comparable (discount rates differ (10% and 30%))"])]
    for run, grey, notes in cases:
        cmp = compare_runs([ref, run])
        rows = html._diff_rows(cmp.table(), "EUR", cmp.judged)
        clear = {r["metric"] for r in html._diff_rows(cmp.table(), "EUR")
                 if r["news"] != "unclear"}
        assert clear >= {"retention", "profit", "lifetime value / account"}
        assert {r["metric"] for r in rows if r["news"] != "unclear"} == clear - grey
        assert difference_notes(cmp, cmp.table()) == notes
        ctx = html.report_context([small_baseline_result])
        ctx["comparison"] = {"verdict": [], "reference": "equal", "pairing": "",
                             "paired": True, "rows": rows, "notes": difference_notes(cmp, cmp.table())}
        page = html._render(ctx)
        for note in notes:
            assert f'<p class="meta">{note}</p>' in page


def test_the_report_writes_a_difference_as_compare_prints_it():
    # the report wrote a relative interval as "+2.0% (+0.5% to +3.5%)", compare as
    # "+2.0% (+0.5 to +3.5)": one formatting now (a share's difference in points likewise)
    from rich.console import Console
    from test_compare import REF, _fake

    from kamsim.cli.compare_cmd import difference_table
    from kamsim.compare import compare_runs
    from kamsim.report import html

    cmp = compare_runs([REF, _fake("b", [103.0, 101.5, 104.0, 102.0], [0.82, 0.81, 0.8, 0.83])])
    console = Console(width=400, record=True)
    console.print(difference_table(cmp))
    printed = console.export_text()
    rows = html._diff_rows(cmp.table(), cmp.runs[0].currency)
    assert any(" to " in row["rel"] for row in rows)
    for row in rows:
        assert re.search(re.escape(row["diff"]) + " +│ +" + re.escape(row["rel"]) + " +│",
                         printed), (row, printed)


@pytest.fixture(scope="module")
def baseline_frames(small_baseline_result):
    return small_baseline_result.to_frames()


def test_the_broken_down_stage_is_the_last_band_and_below_the_ladder(small_baseline_result,
                                                                     baseline_frames):
    import pandas as pd

    from kamsim.report.runs import from_result

    stages = from_result(small_baseline_result).stages
    assert stages == ("exploratory", "basic", "cooperative", "interdependent", "integrated",
                      "uncoupled")
    frames = dict(baseline_frames)
    frames["stage_flows"] = pd.DataFrame(
        [(0, 0, "key", "basic", "uncoupled", 2.0), (0, 1, "key", "integrated", "uncoupled", 1.0),
         (0, 1, "key", "uncoupled", "exploratory", 4.0),
         (0, 2, "key", "uncoupled", "uncoupled", 8.0),
         (0, 2, "key", "uncoupled", "lost", 16.0)],
        columns=["replication", "period", "tier", "from_stage", "to_stage", "accounts"])
    table = charts.stage_flow_table({"b": frames}, {"b": stages}).set_index("tier")
    n_reps = small_baseline_result.replications
    assert table.loc["key", ["up", "down", "lost", "new"]].tolist() == pytest.approx(
        [4.0 / n_reps, 3.0 / n_reps, 16.0 / n_reps, 0.0])
    fig = charts.stage_mix({"b": baseline_frames}, {"b": stages})
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == list(stages)
    (ax,) = fig.axes
    assert len(ax.collections) == len(stages)
    assert ax.collections[-1].get_label() == "uncoupled"


def test_each_stage_mix_panel_has_its_own_runs_stages(small_baseline_result, baseline_frames):
    from kamsim.report.runs import from_result

    stages = list(from_result(small_baseline_result).stages)
    renamed = {"exploratory": "explore", "integrated": "merged"}
    other = dict(baseline_frames)
    other["stage_mix"] = other["stage_mix"].assign(
        stage=other["stage_mix"]["stage"].replace(renamed))
    other_stages = [renamed.get(s, s) for s in stages]
    fig = charts.all_charts({"a": baseline_frames, "b": other},
                            {"a": stages, "b": other_stages})["stage_mix"]
    panels = {ax.get_title(loc="left"): ax for ax in fig.axes}
    for name, own in (("a", stages), ("b", other_stages)):
        ax = panels[name]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == own
        drawn = np.array([c.get_paths()[0].vertices[:, 1].max() if c.get_paths() else 0.0
                          for c in ax.collections])
        assert drawn.max() > 0
    # the renamed run's bands are its accounts, not empty columns of the first run's names
    top_a = max(p.vertices[:, 1].max() for p in panels["a"].collections[-1].get_paths())
    top_b = max(p.vertices[:, 1].max() for p in panels["b"].collections[-1].get_paths())
    assert top_a == pytest.approx(top_b)


def test_churn_causes_are_drawn_once_each_in_size_order(baseline_frames):
    fig = charts.churn_causes({"b": baseline_frames})
    (ax,) = fig.axes
    ch = baseline_frames["churn"]
    sizes = ch.groupby("cause")["accounts"].sum().sort_values(ascending=False, kind="stable")
    assert len(ch) > len(sizes) > 1  # (a churn row per replication, period, tier and cause)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [c.replace("_", " ") for c in sizes.index]
    tiers = list(dict.fromkeys(baseline_frames["timeseries"]["tier"]))
    assert len(ax.patches) == len(sizes) * len(tiers)  # one bar per cause and tier, no more


def test_each_churn_panel_is_ordered_by_its_own_runs_sizes(baseline_frames):
    # causes were ordered by their sum over all runs, under a caption saying largest first:
    # a run's largest cause could be drawn anywhere in its panel
    ch = baseline_frames["churn"]
    sizes = ch.groupby("cause")["accounts"].sum().sort_values(ascending=False, kind="stable")
    top, rest = sizes.index[0], list(sizes.index[1:])
    # the other run lost 100 times more accounts to the smallest cause, and none to the top
    other = dict(baseline_frames)
    other["churn"] = pd.concat([ch[ch["cause"] != top],
                                ch[ch["cause"] == rest[-1]].assign(
                                    accounts=lambda d: d["accounts"] * 100)])
    fig = charts.churn_causes({"a": baseline_frames, "b": other})
    order = {ax.get_title(loc="left"): [t.get_text() for t in ax.get_yticklabels()]
             for ax in fig.axes}
    assert order["a"] == [c.replace("_", " ") for c in sizes.index]
    own = other["churn"].groupby("cause")["accounts"].sum().sort_values(ascending=False,
                                                                       kind="stable")
    # its own largest first; the cause it never saw, at 0, last
    assert order["b"] == [c.replace("_", " ") for c in [*own.index, top]]
    assert order["b"][0] == rest[-1].replace("_", " ") != order["a"][0]


def test_percent_ticks_say_the_share_they_are_at(baseline_frames):
    fig = charts.retention({"b": baseline_frames})
    ax = fig.axes[0]
    from matplotlib.ticker import FixedLocator

    ax.set_ylim(0.95, 1.0)
    ax.yaxis.set_major_locator(FixedLocator([0.95, 0.975, 0.9995, 1.0]))
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks == ["95%", "97.5%", "99.95%", "100%"]  # (it said 98% and 100% twice)


def test_no_whale_curve_for_a_portfolio_that_lost_money(baseline_frames):
    # a share of a negative total turned the curve upside down, and replications of
    # either sign were averaged together
    losing = dict(baseline_frames)
    acc = losing["accounts"]
    # every replication's total below 0, its accounts' ranking unchanged
    losing["accounts"] = acc.assign(profit=acc["profit"] - 2 * acc["profit"].abs().sum())
    fig = charts.whale_curve({"good": baseline_frames, "bad": losing})
    (ax,) = fig.axes
    assert [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")] \
        == ["good"]
    reps = acc["replication"].nunique()
    assert [t.get_text() for t in ax.texts if "peak" not in t.get_text()] == [
        f"no curve for bad: total profit was not positive in {reps} of {reps} simulated "
        "futures (a share of a loss means nothing)"]
    assert "no curve" in charts.caption("whale_curve")[1]


def test_the_whale_curve_is_the_average_futures_not_blown_up_by_one_near_break_even():
    # each replication's cumsum/total was averaged: one future whose total was barely above
    # 0 (here 0.01, a peak of 1,000,000%) made the curve read thousands of percent
    import pandas as pd

    reps = {0: [300.0, 100.0, 0.0, -100.0], 1: [-100.0, 0.0, 100.0, 300.0],
            2: [100.0, 0.0, 0.0, -99.99]}
    acc = pd.DataFrame([(r, p) for r, ps in reps.items() for p in ps],
                       columns=["replication", "profit"])
    fig = charts.whale_curve({"a": {"accounts": acc}}, points=5)
    (ax,) = fig.axes
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "a"]
    total = np.mean([sum(ps) for ps in reps.values()])
    cum = np.array([0.0, 300 + 300 + 100, 400 + 400 + 100, 400 + 400 + 100, 300 + 300 + 0.01])
    assert line.get_ydata() == pytest.approx(cum / 3 / total)
    assert [t.get_text() for t in ax.texts if "peak" in t.get_text()] == [
        "peak 150% at 50% of accounts"]


def test_each_summary_table_says_its_own_confidence(small_baseline_result, no_rendering):
    # runs at different levels were all labelled with the first run's
    from dataclasses import replace

    from kamsim.report.html import render_report
    from kamsim.report.runs import from_result

    ref = from_result(small_baseline_result)
    other = replace(ref, name="other", summary=dict(ref.summary, confidence=0.8))
    page = render_report([ref, other])
    assert "at the reference's 95% in the" in page
    metas = re.findall(r'<p class="meta">[^<]*seed[^<]*</p>', page)
    assert len(metas) == 2
    assert metas[0].endswith("· 95% intervals</p>") and metas[1].endswith("· 80% intervals</p>")
    alone = render_report([ref])
    assert "with 95% intervals." in alone and "· 95% intervals" not in alone


def test_flows_and_churn_causes_say_they_go_by_the_tier_at_the_time(small_baseline_result,
                                                                    baseline_frames,
                                                                    no_rendering):
    # the summary goes by starting tier, these by the tier in that period: unlabelled, key's
    # 34.2 accounts lost read as contradicting the 36.8 the summary implied
    from kamsim.report.html import render_report

    assert "tier accounts were in when lost" in charts.caption("churn_causes")[1]
    assert "tier accounts were in when they moved" in charts.caption("stage_flows")[1]
    fig = charts.churn_causes({"b": baseline_frames})
    assert fig.legends[0].get_title().get_text() == "tier when lost"
    page = render_report([small_baseline_result])
    assert "<th>tier when moved</th>" in page
    assert "by the tier\n    accounts were in when they moved" in page


def test_chart_bands_take_a_confidence_next_to_one() -> None:
    """A scenario accepts confidence 0.9999999999999999; 0.5 + c / 2 rounds to 1 there, and
    the charts' bands asked t_ppf for it (a traceback in kamsim report and plot)."""
    import numpy as np

    from kamsim.report.charts import _mean_band

    values = np.array([[1.0, 2.0], [1.5, np.nan], [2.0, 3.0]])
    for v in (values, values[:, :1]):  # with and without an undefined value
        mean, lo, hi = _mean_band(v, 0.9999999999999999)
        assert np.all(np.isfinite(lo[:1])) and np.all(lo[:1] < mean[:1]) and np.all(hi[:1] > mean[:1])


def test_the_inputs_table_names_every_file_and_writes_money_as_money():
    # runs with rule files of other names had "nan" in each other's columns; an imported
    # portfolio read "from file", its CSV (and the contacts') was called "rules:", and a
    # budget read "1500000.0"
    from kamsim.spec.load import load_scenario

    repo = Path(__file__).resolve().parents[1]
    base = load_scenario(repo / "scenarios" / "baseline.yaml").resolved()
    crm = load_scenario(repo / "scenarios" / "crm_import.yaml").resolved()

    def digest_of(res, file):
        return next(v for k, v in res["rule_hashes"].items() if k.endswith("/" + file))[:12]

    own = json_copy(base)
    own["rule_hashes"] = {k.replace("stages.yaml", "my_stages.yaml"): v
                          for k, v in base["rule_hashes"].items()}
    own["scenario"]["capacity"]["budget_per_year"] = 1500000.0
    table = charts.inputs_table({"base": base, "own": own, "crm": crm},
                                {"own": {"currency": "USD"}})
    assert not table.isna().any().any() and "nan" not in table.to_string()
    digest = digest_of(base, "stages.yaml")
    assert list(table.loc["rules: stages.yaml"]) == [digest, charts.NO_FILE, digest]
    assert list(table.loc["rules: my_stages.yaml"]) == [charts.NO_FILE, digest, charts.NO_FILE]
    assert table.loc["portfolio", "crm"] == "imported from accounts.csv"
    assert table.loc["data: accounts.csv", "crm"] == digest_of(crm, "accounts.csv")
    assert "data: contacts.csv" in table.index and "rules: accounts.csv" not in table.index
    assert list(table.index[-2:]) == ["data: accounts.csv", "data: contacts.csv"]
    assert table.loc["budget per year", "own"] == "$1.50M"
    assert table.loc["budget per year", "base"] == "not limited"


def json_copy(obj):
    import json

    return json.loads(json.dumps(obj))
