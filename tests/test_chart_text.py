"""Names in charts are drawn as written: a scenario, tier, stage or person named ``$\\foo$``
(or "Q3 $ plan", "50% $cut") is text, not matplotlib math text, which failed the chart on an
unknown symbol (``kamsim report``, ``kamsim plot``, ``kamsim dmu show --out unit.svg``) or drew
``$\\alpha$`` as a Greek letter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.timeout(300)

NAME = r"Q3 $\foo$ plan, 50% $cut"


def kamsim(*args: str) -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers the command groups)
    from kamsim.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def folder(small_baseline_result: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder as ``kamsim run --out`` writes it (treat it as read-only)."""
    from kamsim.io import write_results

    return write_results(small_baseline_result, tmp_path_factory.mktemp("res") / "base")


def _texts(fig: Any) -> list[Any]:
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_text()]


def test_a_scenario_name_is_drawn_as_written(folder: Path, tmp_path: Path) -> None:
    """Every chart draws the name literally: matplotlib gets it whole, not as math text, and
    the charts are written (the name failed the charts on an unknown symbol \\foo)."""
    from kamsim.report import charts
    from kamsim.report.figfiles import figure_bytes
    from kamsim.report.runs import from_folder

    run = from_folder(folder)
    figs = charts.all_charts({NAME: run.frames, "other": run.frames},
                             {NAME: run.stages, "other": run.stages})
    for name, fig in figs.items():
        texts = _texts(fig)
        assert any(t.get_text() == NAME for t in texts), name
        assert not any(t.get_parse_math() or t.get_usetex() for t in texts), name
        assert figure_bytes(fig, "svg", name).startswith(b"<?xml")

    d = tmp_path / "named"
    shutil.copytree(folder, d)
    summary = json.loads((d / "summary.json").read_text())
    (d / "summary.json").write_text(json.dumps({**summary, "scenario": NAME}))
    res = kamsim("plot", str(d), "--out", str(tmp_path / "charts"), "--format", "svg")
    assert res.exit_code == 0, res.output
    res = kamsim("report", str(d), "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 0, res.output


def test_a_tick_label_is_drawn_as_written() -> None:
    """Tick labels are made when the figure is drawn, after the chart's function returned:
    saving draws them as written too."""
    from matplotlib.ticker import FuncFormatter

    from kamsim.report import charts
    from kamsim.report.figfiles import figure_bytes, figure_svg

    fig = charts._figure(4, 3)
    ax = fig.add_subplot()
    ax.bar([0, 1], [1, 2])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: r"$\foo$"))
    figure_bytes(fig, "png", "ticks")
    assert r"$\foo$" in figure_svg(fig, "ticks")
    assert {t.get_text() for t in ax.get_xticklabels()} == {r"$\foo$"}


def test_a_person_id_is_drawn_as_written(tmp_path: Path) -> None:
    import networkx as nx

    from kamsim.dmu.draw import draw_unit

    g = nx.DiGraph()
    g.add_node(r"$\foo$", role="champion", attitude=1.0, coverage=0.5, seniority=2)
    g.add_node("eb", role="economic_buyer", attitude=0.0, coverage=0.0, seniority=3)
    g.add_edge(r"$\foo$", "eb", kind="reports_to", sign=1)
    out = draw_unit(g, tmp_path / "unit.svg", title=r"ACME $\bar$")
    assert r"$\foo$" in out.read_text()  # (matplotlib keeps each text in a comment)
