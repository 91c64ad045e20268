"""``kamsim report`` (one self-contained HTML file) and ``kamsim plot`` (the same charts as
files), for stored runs, comparison groups or results folders."""

from __future__ import annotations

from pathlib import Path

import click

from kamsim.cli.main import cli, handles_errors

_STORE = click.option("--store", type=click.Path(dir_okay=False), default=None,
                      help="Run store (DuckDB file; default ./kamsim.duckdb or $KAMSIM_STORE).")


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), default="report.html",
              show_default=True, help="HTML file to write (atomically).")
@_STORE
@handles_errors
def report(runs: tuple[str, ...], out: str, store: str | None) -> None:
    """Write an HTML report on RUNS: run ids, a group id (a comparison, side by side) or
    folders written by ``kamsim run --out``. Several runs are compared with the first.

    The file is self-contained: it works offline and loads nothing."""
    from kamsim.io import require_folder
    from kamsim.report.html import write_report
    from kamsim.report.runs import load_runs

    require_folder(Path(out))  # before the runs are read
    loaded = load_runs(list(runs), store)
    path = write_report(loaded, Path(out))
    click.echo(f"wrote {path} ({len(loaded)} run{'s' if len(loaded) != 1 else ''})")


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder to write one file per chart into (created if missing; its parent "
                   "must exist).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png",
              show_default=True)
@_STORE
@handles_errors
def plot(runs: tuple[str, ...], out: str, fmt: str, store: str | None) -> None:
    """Write the report's charts for RUNS as PNG or SVG files, one per chart."""
    from kamsim.compare import one_currency, unique_names
    from kamsim.errors import RunError
    from kamsim.io import make_folder
    from kamsim.report.charts import all_charts
    from kamsim.report.figfiles import save_figure
    from kamsim.report.runs import load_runs

    loaded = load_runs(list(runs), store)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise RunError(f"--out {folder}: exists and is not a folder")
    labels = unique_names([r.name for r in loaded])
    # as in the report: one currency, and the first run's currency and confidence
    currency = one_currency(labels, [r.summary.get("currency", "EUR") for r in loaded])
    first = loaded[0].summary
    figs = all_charts({lab: r.frames for lab, r in zip(labels, loaded, strict=True)},
                      {lab: r.stages for lab, r in zip(labels, loaded, strict=True)},
                      confidence=float(first.get("confidence", 0.95)),
                      currency=currency)
    make_folder(folder)
    for name, fig in figs.items():
        path = folder / f"{name}.{fmt}"
        save_figure(fig, path, fmt)
        click.echo(f"wrote {path}")
