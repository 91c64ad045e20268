"""Figures to files and to inline SVG for the HTML report (deterministic: the same figure
gives the same bytes)."""

from __future__ import annotations

from typing import Any

__all__ = ["figure_svg", "save_figure"]


def figure_svg(fig: Any, prefix: str) -> str:
    """The figure as an inline ``<svg>`` element for HTML: no XML prolog, no metadata, no
    namespace URLs, ids prefixed so several charts can share one page."""
    import io
    import re

    import matplotlib

    buf = io.StringIO()
    # a fixed salt makes the generated ids (and so the report) the same on every run
    with matplotlib.rc_context({"svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None,
                                                 "Format": None, "Type": None})
    svg = buf.getvalue()
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


def save_figure(fig: Any, path: Any, fmt: str) -> None:
    """Write the figure to ``path`` in ``fmt`` (png or svg) atomically."""
    from pathlib import Path

    import matplotlib

    from kamsim.io import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=f".{fmt}") as tmp, \
            matplotlib.rc_context({"svg.hashsalt": path.stem}):
        fig.savefig(tmp, format=fmt, dpi=150,
                    metadata={"Software": None} if fmt == "png" else {"Date": None})
