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


#: columns of ``runs list`` that may be drawn narrower than their text, to this many
#: characters: a hash by its first digits (a prefix names it, as git's short hashes do) and
#: the time over two lines; every other cell (labels, names, money) is drawn whole
_SHRINKABLE = {"hash": 8, "created_at": 10}


def _frame_tables(df: Any, title: str | None, width: int,
                  shrinkable: dict[str, int] | None = None) -> list[Any]:
    """``df`` as rich Tables at most ``width`` characters wide, each under its ``title``,
    every cell whole (but those of ``shrinkable`` columns, down to their given width): one
    table when it fits, else the columns split over several, each led by the first column
    (a run's id in ``runs list``; whatever the query put first) and titled as its part, and
    a cell wider than the screen wrapped.

    Rich fits a table that is too wide by narrowing every column evenly, which cut a sweep's
    label to "capacity.a..." and profit to "339,517,3...", and a 23-column query's every
    cell to 2 characters; fewer columns per table keep each one readable."""
    from rich.cells import cell_len
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    shrinkable = shrinkable or {}
    names = [str(c) for c in df.columns]
    if not names:
        return [Group(Text(title, style="table.title"), Table()) if title else Table()]
    cells = [[_cell(v) for v in df.iloc[:, i]] for i in range(len(names))]
    need = [max([cell_len(n)] + [cell_len(c) for c in col]) for n, col in zip(names, cells,
                                                                           strict=True)]
    least = {i: min(need[i], shrinkable.get(n, need[i])) for i, n in enumerate(names)}

    def span(ix: list[int], widths: dict[int, int]) -> int:
        return 1 + sum(widths[i] + 3 for i in ix)  # a space each side and a border

    parts, cur = [], [0]
    for i in range(1, len(names)):
        if span([*cur, i], least) > width and len(cur) > 1:
            parts.append(cur)
            cur = [0, i]
        else:
            cur.append(i)
    parts.append(cur)
    tables = []
    for k, ix in enumerate(parts):
        widths = {i: least[i] for i in ix}
        spare = width - span(ix, least)
        for i in ix:  # room left makes shrunk columns whole again, in order
            if 0 < need[i] - widths[i] <= spare:
                spare -= need[i] - widths[i]
                widths[i] = need[i]
        folded = set()
        for i in ix[1:]:  # (a part wider than the screen is the id and one column)
            if span(ix, widths) <= width:
                break
            # one cell wider than the screen (a query's JSON): wrapped whole, not cut
            widths[i] = max(width - span([ix[0]], least) - 3, 10)
            folded.add(i)
        head = title if len(parts) == 1 else (
            f"{title + ' ' if title else ''}(part {k + 1} of {len(parts)})")
        t = Table()
        for i in ix:
            numeric = df.iloc[:, i].dtype.kind in "iuf"
            whole = widths[i] >= need[i]
            t.add_column(names[i], justify="right" if numeric else "left",
                         width=widths[i],
                         no_wrap=(whole or names[i] != "created_at") and i not in folded,
                         overflow="fold" if i in folded else "ellipsis")
        for r in range(len(df)):
            t.add_row(*(cells[i][r] for i in ix))
        # the title as a line of its own, above the table: as the table's title it was
        # wrapped to the table's width, and a narrow further part's "runs in PATH (part 2 of
        # 2)" was cut to "... (part " and "2 of 2)" on the next line
        tables.append(Group(Text(head, style="table.title"), t) if head else t)
    return tables


@cli.group()
def runs() -> None:
    """The run store: every `kamsim run` is recorded there (unless --no-store)."""


@runs.command("list")
@_store_option
@handles_errors
def list_runs(store: str | None) -> None:
    """One line per run: id, time, scenario, hash, seed, replications, group, profit,
    retention."""
    from kamsim.report.terminal import pct
    from kamsim.store import open as open_store

    with open_store(store) as st:
        df = st.runs()
        path = st.path
    if df.empty:
        click.echo(f"no runs in {path}")
        return
    df = df.assign(
        created_at=df["created_at"].str.slice(0, 19).str.replace("T", " ") + "Z",
        retention=df["retention"].map(lambda v: "" if v != v else pct(v)))
    con = _console()
    for t in _frame_tables(df, f"runs in {path}", con.width, _SHRINKABLE):
        con.print(t)


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
    con = _console()
    tables = _frame_tables(df, None, con.width)
    for t in tables:
        con.print(t)
    click.echo(f"{len(df)} row{'s' if len(df) != 1 else ''}"
               + (f", {len(df.columns)} columns in {len(tables)} parts of at most "
                  f"{con.width} characters (--json gives each row whole)"
                  if len(tables) > 1 else ""))


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

