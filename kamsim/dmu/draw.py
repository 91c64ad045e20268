"""Draw one decision unit (a graph from :func:`kamsim.dmu.graph.to_graph`) to SVG or PNG.

Roles are node shapes (legend), attitude is the fill colour (red enemy -> grey neutral -> green
mentor), coverage is the border width, influence edges are green (support) or red dashed
(conflict), reports_to edges are grey arrows. The layout is hierarchical by seniority (most
senior on top), so the same graph always gives the same picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from kamsim.drawtext import as_written
from kamsim.io import atomic_path, require_folder

__all__ = ["draw_unit", "layout"]

_SHAPES = ("o", "s", "^", "D", "v", "p", "h", "8", "<", ">")


def layout(graph: nx.DiGraph) -> dict[Any, tuple[float, float]]:
    """Deterministic positions: one row per seniority level (senior on top), node order in rows."""
    rows: dict[int, list[Any]] = {}
    for node, attrs in graph.nodes(data=True):
        rows.setdefault(int(attrs.get("seniority", 1)), []).append(node)
    pos = {}
    for level, nodes in rows.items():
        for i, node in enumerate(nodes):
            pos[node] = (i - (len(nodes) - 1) / 2.0, float(level))
    return pos


def _attitude_colour(value: float) -> tuple[float, float, float]:
    """Red (-1) -> grey (0) -> green (+1), linear in each half."""
    grey, red, green = (0.62, 0.62, 0.62), (0.84, 0.15, 0.16), (0.17, 0.63, 0.17)
    end = red if value < 0 else green
    t = min(1.0, abs(float(value)))
    return tuple(g + (e - g) * t for g, e in zip(grey, end, strict=True))  # type: ignore


def draw_unit(graph: nx.DiGraph, path: str | Path, title: str = "") -> Path:
    """Write the picture of ``graph`` to ``path`` (format by suffix: .svg or .png), atomically.

    Returns the path written. Raises ValueError for another suffix, RunError if the folder
    does not exist.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise ValueError(f"cannot draw to {path.name!r}: use a .svg or .png file name")
    require_folder(path)
    import matplotlib

    matplotlib.use("Agg", force=False)
    return _draw(graph, path, fmt, title)


# person ids, roles and the title are drawn as written: "$x$" is an id, not math text (which
# failed on an unknown symbol); a text takes this when made and when drawn, as the charts'
@as_written
def _draw(graph: nx.DiGraph, path: Path, fmt: str, title: str) -> Path:
    """:func:`draw_unit` once the path is checked."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    pos = layout(graph)
    roles = sorted({str(a.get("role")) for _, a in graph.nodes(data=True)})
    shape = {r: _SHAPES[i % len(_SHAPES)] for i, r in enumerate(roles)}
    width = max(6.0, 1.6 * max((sum(1 for p in pos.values() if p[1] == y)
                                for y in {p[1] for p in pos.values()}), default=1))
    fig = Figure(figsize=(width, 5.5))
    ax = fig.add_subplot()
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    reports = [(a, b) for a, b, d in graph.edges(data=True) if "reports_to" in str(d.get("kind"))]
    support = [(a, b) for a, b, d in graph.edges(data=True)
               if "influences" in str(d.get("kind")) and d.get("sign", 1) >= 0]
    conflict = [(a, b) for a, b, d in graph.edges(data=True)
                if "influences" in str(d.get("kind")) and d.get("sign", 1) < 0]
    common = {"ax": ax, "arrows": True, "arrowsize": 14, "node_size": 900}
    nx.draw_networkx_edges(graph, pos, edgelist=reports, edge_color="#9e9e9e", width=1.5,
                           **common)
    nx.draw_networkx_edges(graph, pos, edgelist=support, edge_color="#2ca02c", width=1.2,
                           connectionstyle="arc3,rad=0.15", **common)
    nx.draw_networkx_edges(graph, pos, edgelist=conflict, edge_color="#d62728", width=1.2,
                           style="dashed", connectionstyle="arc3,rad=0.15", **common)
    for role in roles:
        nodes = [n for n, a in graph.nodes(data=True) if str(a.get("role")) == role]
        nx.draw_networkx_nodes(
            graph, pos, nodelist=nodes, ax=ax, node_shape=shape[role], node_size=900,
            node_color=[_attitude_colour(graph.nodes[n].get("attitude", 0.0)) for n in nodes],
            edgecolors="black",
            linewidths=[0.3 + 3.5 * float(graph.nodes[n].get("coverage", 0.0)) for n in nodes])
    labels = {n: f"{a.get('role')}\n{n}" for n, a in graph.nodes(data=True)}
    nx.draw_networkx_labels(graph, {n: (x, y - 0.32) for n, (x, y) in pos.items()}, labels,
                            ax=ax, font_size=7)
    handles = [Line2D([], [], marker=shape[r], linestyle="", color="#bbbbbb",
                      markeredgecolor="black", markersize=9, label=r) for r in roles]
    handles += [
        Line2D([], [], color="#2ca02c", label="influences (support)"),
        Line2D([], [], color="#d62728", linestyle="--", label="influences (conflict)"),
        Line2D([], [], color="#9e9e9e", label="reports to"),
        Line2D([], [], marker="o", linestyle="", color=_attitude_colour(-1), label="enemy"),
        Line2D([], [], marker="o", linestyle="", color=_attitude_colour(0), label="neutral"),
        Line2D([], [], marker="o", linestyle="", color=_attitude_colour(1), label="mentor"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              title="border width = coverage", title_fontsize=7, frameon=False)
    ax.margins(0.15)
    meta = {"Date": None} if fmt == "svg" else {}  # no timestamp: same graph, same file
    # a fixed salt makes the SVG's element ids, hence the file, reproducible
    with atomic_path(path, suffix=path.suffix) as tmp, \
            matplotlib.rc_context({"svg.hashsalt": "kamsim"}):
        fig.savefig(tmp, format=fmt, bbox_inches="tight", metadata=meta, dpi=120)
    return path
