"""Figures to files and to inline SVG for the HTML report (deterministic: the same figure
gives the same bytes), and the report's charts as files (:func:`write_charts`, what
``kamsim plot`` does)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["figure_svg", "figure_bytes", "save_figure", "write_charts", "CHART_FORMATS"]

#: the file formats a chart is written in
CHART_FORMATS = ("png", "svg")


def figure_svg(fig: Any, prefix: str) -> str:
    """The figure as an inline ``<svg>`` element for HTML: no XML prolog, no metadata, no
    namespace URLs, ids prefixed so several charts can share one page."""
    import re

    # (its metadata, with the creator figure_bytes leaves in, is dropped below)
    svg = figure_bytes(fig, "svg", prefix).decode()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    # one pass over id definitions and references, so a prefix is never applied twice
    svg = re.sub(r'(\bid="|#)([^"\s)]+)',
                 lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids
                                         else m.group(2)), svg)
    return re.sub(r'<svg\s+width="[^"]*"\s+height="[^"]*"',
                  f'<svg role="img" class="chart" data-chart="{prefix}"', svg, count=1)


def figure_bytes(fig: Any, fmt: str, name: str) -> bytes:
    """The figure as the bytes of a ``fmt`` (png or svg) file named ``name``: drawn here,
    where a figure that cannot be drawn fails, before any file is written."""
    import io

    import matplotlib

    from kamsim.drawtext import AS_WRITTEN

    buf = io.BytesIO()
    # a fixed salt makes the generated ids (and so the file and the report) the same on every
    # run; the tick labels, made now, are drawn as written too
    with matplotlib.rc_context({"svg.hashsalt": name, **AS_WRITTEN}):
        fig.savefig(buf, format=fmt, dpi=150,
                    metadata={"Software": None} if fmt == "png" else {"Date": None})
    return buf.getvalue()


def save_figure(fig: Any, path: Any, fmt: str) -> None:
    """Write the figure to ``path`` in ``fmt`` (png or svg) atomically."""
    _write_bytes(Path(path), figure_bytes(fig, fmt, Path(path).stem), fmt)


def _write_bytes(path: Path, data: bytes, fmt: str) -> None:
    from kamsim.io import atomic_path

    with atomic_path(path, suffix=f".{fmt}") as tmp:
        tmp.write_bytes(data)


def write_charts(records: Sequence[Any], folder: str | Path, fmt: str = "png", *,
                 written: Callable[[Path], None] | None = None) -> list[Path]:
    """Write the report's charts on ``records`` (as :func:`kamsim.report.html.write_report`
    takes them: Results, stored runs or ReportRuns, the first the reference) into ``folder``,
    one ``<chart>.<fmt>`` file per chart, each atomically; returns the paths in chart order.

    The folder is created if missing (its parent must exist). Everything that can be refused
    or fail is refused before the folder is made or any file is written: a ``folder`` that is
    a file, an unknown format, runs in different currencies, a chart that cannot be drawn
    (every chart is drawn first, then written). The charts are in the first run's currency and confidence,
    as in the report. ``written`` is called with each path as soon as it is written (the
    command tells each file then, so an interrupted plot has said what it left)."""
    from kamsim.compare import one_currency, unique_names
    from kamsim.errors import RunError
    from kamsim.io import make_folder
    from kamsim.report.charts import all_charts
    from kamsim.report.html import as_report_runs

    if fmt not in CHART_FORMATS:
        raise RunError(f"cannot write charts as {fmt!r}: use one of {', '.join(CHART_FORMATS)}")
    runs = as_report_runs(records)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunError(f"--out {folder}: exists and is not a folder")
    labels = unique_names([r.name for r in runs])
    currency = one_currency(labels, [r.summary.get("currency", "EUR") for r in runs])
    first = runs[0].summary
    figs = all_charts({lab: r.frames for lab, r in zip(labels, runs, strict=True)},
                      {lab: r.stages for lab, r in zip(labels, runs, strict=True)},
                      confidence=float(first.get("confidence", 0.95)),
                      currency=currency)
    drawn = {name: figure_bytes(fig, fmt, name) for name, fig in figs.items()}
    make_folder(folder)
    paths = []
    for name, data in drawn.items():
        path = folder / f"{name}.{fmt}"
        _write_bytes(path, data, fmt)
        paths.append(path)
        if written is not None:
            written(path)
    return paths
