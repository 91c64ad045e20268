"""What kamsim writes gets the mode the umask gives a plain file or folder (mkstemp's and
mkdtemp's private 0600/0700 made figures, maps and results folders unreadable to others)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from kamsim.io import atomic_write_text, write_results


@pytest.fixture(params=[0o022, 0o027], ids=["umask022", "umask027"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_text_file_gets_the_umask_mode(tmp_path: Path, umask: int) -> None:
    atomic_write_text(tmp_path / "a.html", "<p>hi</p>")
    assert mode(tmp_path / "a.html") == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.html"]


def test_results_folder_gets_the_umask_mode(tmp_path: Path, umask: int) -> None:
    result = SimpleNamespace(to_frames=lambda: {"kpis": pd.DataFrame({"x": [1, 2]})},
                             summary=lambda: {"n": 2}, resolved={"name": "t"})
    out = write_results(result, tmp_path / "out")
    assert mode(out) == 0o777 & ~umask
    assert {p.name: mode(p) for p in out.iterdir()} == {
        n: 0o666 & ~umask for n in ("kpis.parquet", "kpis.csv", "summary.json",
                                    "scenario.resolved.json")}


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_figure_file_gets_the_umask_mode(tmp_path: Path, umask: int, fmt: str) -> None:
    from matplotlib.figure import Figure

    from kamsim.report.figfiles import save_figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / f"chart.{fmt}", fmt)
    assert mode(tmp_path / f"chart.{fmt}") == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [f"chart.{fmt}"]


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_unit_drawing_gets_the_umask_mode(tmp_path: Path, umask: int, suffix: str) -> None:
    import networkx as nx

    from kamsim.dmu.draw import draw_unit

    g = nx.DiGraph()
    g.add_node("eb", role="economic_buyer", influence=0.9, attitude=0.5, coverage=1.0)
    out = draw_unit(g, tmp_path / f"unit{suffix}")
    assert mode(out) == 0o666 & ~umask
