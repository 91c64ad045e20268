"""``kamsim runs``: list, show, export, query and delete the runs in the run store.

A thin layer over :mod:`kamsim.store`; everything here is ``kamsim.store.open(...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kamsim.cli.main import _console, cli, handles_errors


def _store_option(fn: Any) -> Any:
    return click.option("--store", type=click.Path(dir_okay=False), default=None,
                        help="Run store (DuckDB file; default ./kamsim.duckdb or "
                             "$KAMSIM_STORE).")(fn)


def _cell(value: Any) -> str:
    """A table cell: numbers readable, missing values blank."""
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _frame_table(df: Any, title: str | None = None) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in df.columns:
        t.add_column(str(col), justify="right" if df[col].dtype.kind in "iuf" else "left")
    for row in df.itertuples(index=False):
        t.add_row(*(_cell(v) for v in row))
    return t


@cli.group()
def runs() -> None:
    """The run store: every `kamsim run` is recorded there (unless --no-store)."""


@runs.command("list")
@_store_option
@handles_errors
def list_runs(store: str | None) -> None:
    """One line per run: id, time, scenario, hash, seed, replications, group, profit,
    retention."""
    from kamsim.store import open as open_store

    with open_store(store) as st:
        df = st.runs()
        path = st.path
    if df.empty:
        click.echo(f"no runs in {path}")
        return
    df = df.assign(
        created_at=df["created_at"].str.slice(0, 19).str.replace("T", " ") + "Z",
        retention=df["retention"].map(lambda v: "" if v != v else f"{100 * v:.1f}%"))
    _console().print(_frame_table(df, title=f"runs in {path}"))


@runs.command()
@click.argument("run_id")
@_store_option
@handles_errors
def show(run_id: str, store: str | None) -> None:
    """A run's metadata and its summary table by tier (RUN_ID a group's id: each of its
    runs, as report and compare take a group)."""
    from kamsim.report.terminal import summary_table
    from kamsim.store import open as open_store

    with open_store(store) as st:
        recs = st.get_many(run_id)
    from rich.text import Text

    con = _console()
    if recs[0].meta.get("group_id") == run_id:  # a group's id was given
        con.print(Text.assemble(("group", "bold"), f": {run_id}, {len(recs)} run"
                                f"{'s' if len(recs) != 1 else ''}"), highlight=False)
    keys = ("run_id", "created_at", "scenario", "scenario_hash", "seed", "replications",
            "kamsim_version", "group_id", "label", "elapsed_s")
    for i, rec in enumerate(recs):
        if i:
            con.print()
        for k in keys:
            v = rec.meta.get(k)
            if v is not None:
                shown = f"{v:.2f}" if k == "elapsed_s" else str(v)
                con.print(Text.assemble((k, "bold"), f": {shown}"), highlight=False)
        overrides = rec.resolved.get("overrides")
        if overrides:
            con.print(Text.assemble(("overrides", "bold"),
                                    f": {' '.join(map(str, overrides))}"), highlight=False)
        con.print(summary_table(rec.summary))


@runs.command()
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder to write, atomically; an existing folder is replaced only if it "
                   "is empty or an earlier results folder.")
@_store_option
@handles_errors
def export(run_id: str, fmt: str, out: str, store: str | None) -> None:
    """Write a run's tables, summary and resolved scenario into a folder."""
    from kamsim.store import open as open_store

    with open_store(store) as st:
        written = st.export(run_id, fmt, Path(out))  # type: ignore[arg-type]
    click.echo(f"wrote {written}/")


@runs.command()
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON records.")
@_store_option
@handles_errors
def query(sql: str, as_json: bool, store: str | None) -> None:
    """Run a read-only SQL query on the store (tables: runs, timeseries, accounts, events,
    stage_mix, stage_flows, churn, utilisation; each keyed by run_id)."""
    from kamsim.store import open as open_store

    with open_store(store) as st:
        df = st.query(sql)
    if as_json:
        click.echo(df.to_json(orient="records", indent=2, date_format="iso"))
        return
    _console().print(_frame_table(df))
    click.echo(f"{len(df)} row{'s' if len(df) != 1 else ''}")


@runs.command()
@click.argument("run_id")
@_store_option
@handles_errors
def delete(run_id: str, store: str | None) -> None:
    """Remove a run and all its rows from the store."""
    from kamsim.store import open as open_store

    with open_store(store, read_only=False) as st:
        rid = st.delete(run_id)
    click.echo(f"deleted run {rid}")

