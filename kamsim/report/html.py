"""The HTML report: one self-contained file (inline CSS and SVG charts, no scripts, no
fonts, no requests), readable offline and printable for a board.

It reads runs (fresh Results, stored runs or results folders, see
:mod:`kamsim.report.runs`) and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kamsim import __version__
from kamsim.report.runs import ReportRun, from_record, from_result
from kamsim.report.terminal import (
    ALL_ACCOUNTS,
    MEASURE_NAMES,
    difference_cells,
    difference_notes,
    interval,
    money,
    pct,
    percent_label,
    summary_notes,
)

__all__ = ["as_report_runs", "render_report", "write_report", "report_context"]


def as_report_runs(records: Sequence[Any]) -> list[ReportRun]:
    """ReportRuns from Results, stored RunRecords or ReportRuns (in that order)."""
    out = []
    for r in records:
        if isinstance(r, ReportRun):
            out.append(r)
        elif hasattr(r, "per_replication"):
            out.append(from_result(r))
        elif hasattr(r, "tables") and hasattr(r, "meta"):
            out.append(from_record(r))
        else:
            raise TypeError(f"cannot report on {type(r).__name__} (expected a Result, a "
                            "stored run or a ReportRun)")
    if not out:
        raise ValueError("a report needs at least one run")
    return out


def _summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    cur = summary.get("currency", "EUR")
    fmts = {"retention": pct, "clv": lambda v: money(v, cur)}

    def row(name: str, s: dict[str, Any], total: bool) -> dict[str, Any]:
        cells = [interval(s[k], fmts.get(k, lambda v: money(v, cur))) for k in MEASURE_NAMES]
        return {"tier": name, "cells": cells, "total": total}

    rows = [row(t, s, False) for t, s in summary["by_tier"].items()]
    rows.append(row(ALL_ACCOUNTS, summary, True))
    return rows


def _diff_rows(table: Any, currency: str,
               judged: Callable[[str, str], bool] = lambda scenario, metric: True
               ) -> list[dict[str, Any]]:
    """The rows of a difference table (:meth:`kamsim.compare.Comparison.table`); ``judged``
    (:meth:`kamsim.compare.Comparison.judged`) tells whose differences are news at all."""
    rows = []
    for r in table.itertuples(index=False):
        tier, measure, d, rel, clear = difference_cells(r, currency)
        # colour says good or bad news, and only of a difference whose interval excludes 0
        # (none without an interval, NaN) and that compare judges (not over other horizons,
        # periods or model versions, nor a lifetime value at another discount rate: the
        # notes say why): the rest is grey. More cost to serve is bad news.
        good = (r.diff > 0) != (r.metric == "cost_to_serve")
        news = ("good" if good else "bad") if clear and judged(r.scenario, r.metric) \
            else "unclear"
        rows.append({"scenario": r.scenario, "tier": tier, "metric": measure, "diff": d,
                     "rel": rel, "news": news})
    return rows


def _pairing(cmp: Any) -> tuple[str, bool]:
    """A sentence on which scenarios are paired with the reference, as ``compare`` decided
    (:class:`kamsim.compare.Comparison`), and whether all are."""
    names = cmp.names
    ref = names[0]
    unpaired = [f"{n} ({cmp._why_unpaired(i)})" for i, n in enumerate(names) if
                i > 0 and not cmp.paired[i]]
    paired = [n for i, n in enumerate(names) if i > 0 and cmp.paired[i]]
    if not unpaired:
        return (f"Every scenario saw the same random futures as the reference ({ref}), so the "
                "differences are paired.", True)
    text = (f"Not paired with the reference ({ref}): {'; '.join(unpaired)}; those differences "
            "are of two independent means (Welch intervals).")
    if paired:
        text = (f"{', '.join(paired)} saw the same random futures as the reference, so "
                f"{'its' if len(paired) == 1 else 'their'} differences are paired. " + text)
    return text, False


def _means_over(runs: Sequence[ReportRun], labels: Sequence[str]) -> str:
    """What the means are over: one phrase when every run has the same replications and
    horizon, else each run's."""
    each = [(r.summary.get("replications"), f"{r.summary.get('horizon_months', 0):g}")
            for r in runs]
    if len(set(each)) == 1:
        return f"Mean over {each[0][0]} simulated futures of {each[0][1]} months"
    return "Means over " + "; ".join(f"{lab}: {n} simulated futures of {h} months"
                                     for lab, (n, h) in zip(labels, each, strict=True))


def _description(run: ReportRun) -> str:
    """The scenario's description; of a run named otherwise (a sweep's point, by its label)
    said to be the base scenario's: it tells of the file's values ("a team of 22 account
    managers"), not of the point's (2 account managers)."""
    text = str(run.resolved.get("scenario", {}).get("description") or "").strip()
    scenario = str(run.summary.get("scenario", run.name))
    if text and run.name != scenario:
        return f"Base scenario {scenario}: {text}"
    return text


def report_context(records: Sequence[Any]) -> dict[str, Any]:
    """Everything the template shows, as plain data (charts as inline SVG strings).

    Several runs are compared with the first: they must be in one currency (a RunError
    otherwise, before anything is drawn), and the charts use the first's currency and
    confidence, as the comparison does. Each run's summary table is at its own confidence:
    when the runs' levels differ, each table says its level and the header says that the
    charts and differences are at the reference's."""
    from kamsim.compare import RunFigures, compare_runs, one_currency, unique_names
    from kamsim.report import charts
    from kamsim.report.figfiles import figure_svg

    runs = as_report_runs(records)
    labels = unique_names([r.name for r in runs])
    first = runs[0].summary
    currency = one_currency(labels, [r.summary.get("currency", "EUR") for r in runs])
    confidence = float(first.get("confidence", 0.95))
    frames = {lab: r.frames for lab, r in zip(labels, runs, strict=True)}
    stages = {lab: r.stages for lab, r in zip(labels, runs, strict=True)}
    figs = charts.all_charts(frames, stages, confidence=confidence, currency=currency)
    chart_list = []
    for name, fig in figs.items():
        title, how = charts.caption(name, confidence)
        chart_list.append({"name": name, "title": title, "how": how,
                           "svg": figure_svg(fig, name)})
    comparison = None
    if len(runs) > 1:
        # named as the cards are (a sweep's point by its label, not "baseline #2")
        cmp = compare_runs([replace(RunFigures.from_tables(r.summary, r.frames["accounts"],
                                                           run_id=r.run_id,
                                                           resolved=r.resolved), name=r.name)
                            for r in runs])
        pairing, all_paired = _pairing(cmp)
        table = cmp.table()
        comparison = {"verdict": cmp.verdict(), "reference": labels[0],
                      "pairing": pairing, "paired": all_paired,
                      "rows": _diff_rows(table, currency, cmp.judged),
                      "notes": difference_notes(cmp, table)}
    inputs = charts.inputs_table({lab: r.resolved for lab, r in zip(labels, runs, strict=True)},
                                 {lab: r.summary for lab, r in zip(labels, runs, strict=True)})
    flows = charts.stage_flow_table(frames, stages)
    conf = percent_label(confidence)
    levels = [percent_label(float(r.summary.get("confidence", 0.95))) for r in runs]
    return {
        "title": ("Comparison: " + " vs ".join(labels)) if len(runs) > 1
        else f"Scenario report: {labels[0]}",
        "version": __version__, "confidence": conf, "means_over": _means_over(runs, labels),
        "mixed_confidence": len(set(levels)) > 1,
        "runs": [{"label": lab, "origin": r.origin, "run_id": r.run_id, "confidence": level,
                  "replications": r.summary.get("replications"),
                  "horizon": f"{r.summary.get('horizon_months', 0):g}", "seed": r.summary.get("seed"),
                  "description": _description(r),
                  "rows": _summary_rows(r.summary), "notes": summary_notes(r.summary)}
                 for lab, r, level in zip(labels, runs, levels, strict=True)],
        "metric_names": list(MEASURE_NAMES.values()),
        "comparison": comparison,
        "charts": chart_list,
        "flows": [{"scenario": f.scenario, "tier": f.tier,
                   "values": [f"{getattr(f, k):.1f}" for k in charts.FLOW_KINDS]}
                  for f in flows.itertuples(index=False)],
        "flow_kinds": list(charts.FLOW_KINDS),
        "inputs_cols": list(inputs.columns),
        "inputs": [{"name": idx, "values": list(row)} for idx, row in inputs.iterrows()],
    }


def render_report(records: Sequence[Any]) -> str:
    """The report on ``records`` (one run, or several side by side with the first as the
    reference) as one HTML string that loads nothing from anywhere."""
    return _render(report_context(records))


def _render(ctx: dict[str, Any]) -> str:
    """The report template filled in with ``ctx`` (as :func:`report_context` makes it)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    for c in ctx["charts"]:
        c["svg"] = jinja2.utils.markupsafe.Markup(c["svg"])  # our own SVG, ids escaped
    return env.get_template("report.html.j2").render(**ctx)


def write_report(records: Sequence[Any], path: str | Path) -> Path:
    """Render the report and write it to ``path`` atomically; returns the path."""
    from kamsim.io import atomic_write_text, require_folder

    path = Path(path)
    require_folder(path)
    html = render_report(records)
    atomic_write_text(path, html)  # readable by others as the umask allows: it is shared
    return path
