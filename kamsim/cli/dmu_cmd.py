"""``kamsim dmu``: look at the decision units of a scenario's accounts.

The data comes from :mod:`kamsim.dmu_maps`; this module only parses arguments and renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kamsim.cli.main import SEED_MAX, _sets, cli, handles_errors
from kamsim.cli.main import _console as _main_console

#: width of the output when it is not a terminal: wide enough that person ids are never cut
_PIPE_WIDTH = 200


@cli.group()
def dmu() -> None:
    """Decision units: who decides in an account, and how well we cover them."""


def _console() -> Any:
    return _main_console(width=_PIPE_WIDTH)  # ids and roles shown as written, not as markup


def _load(scenario: str, sets: tuple[str, ...], seed: int | None) -> Any:
    from kamsim.spec.load import load_scenario

    overrides = list(sets) + ([f"seed={seed}"] if seed is not None else [])
    return load_scenario(scenario, overrides)


def _title(amap: Any) -> str:
    # "start of the run" or "end of month M": month 0 is a month played, not the start
    return f"{amap.account_id} ({amap.tier}), {amap.when}"


def _people_table(amap: Any) -> Any:
    from rich.table import Table

    table = Table(title=_title(amap))
    for col, justify in (("person", "left"), ("role", "left"), ("influence", "right"),
                         ("attitude", "left"), ("coverage", "left"), ("held by", "left"),
                         ("months in post", "right")):
        # ids are what people search for: never cut them
        table.add_column(col, justify=justify,  # type: ignore[arg-type]
                         no_wrap=True, min_width=len(col) if col != "person" else 12)
    for p in amap.description["people"]:
        table.add_row(p["id"], p["role"], f"{p['influence']:.2f}",
                      f"{p['attitude_label']} ({p['attitude']:+.2f})",
                      f"{p['coverage_label']} ({p['coverage']:.2f})",
                      p["held_by"].replace("_", " "), f"{p['months_in_post']:.0f}")
    return table


def _metrics_lines(values: dict[str, Any]) -> list[str]:
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    return [
        f"coverage {values['coverage']:.2f}   multithreading {values['multithreading']:.0f}   "
        f"sentiment {values['sentiment']:+.2f}",
        f"economic buyer covered {yes(values['dm_covered'])}   champion "
        f"{yes(values['champion'])}   single-point-of-failure share {values['spof_share']:.0%}",
    ]


@dmu.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--account", "account_id", required=True, help="The account id to show.")
@click.option("--month", type=click.IntRange(0), default=None, metavar="M",
              help="Show the unit at the end of month M, after that month's departures and "
                   "contact: month M as `kamsim trace` tells it (month 0 is the first month "
                   "played). Traces the account through one replication. Without it: the "
                   "start of the run, before month 0.")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=None,
              help="Scenario seed (default: the scenario's).")
@_sets
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also draw the map to this file (.svg or .png).")
@handles_errors
def show(scenario: str, account_id: str, month: int | None, seed: int | None,
         sets: tuple[str, ...], out: str | None) -> None:
    """Print one account's decision unit: people, metrics and red flags."""
    from kamsim.dmu_maps import account_map
    from kamsim.errors import RunError

    if out is not None and Path(out).suffix.lower() not in (".svg", ".png"):
        raise RunError(f"cannot draw to {out!r}: use a .svg or .png file name")
    if out is not None:  # before the map is computed, not after
        from kamsim.io import require_folder

        require_folder(Path(out))
    amap = account_map(_load(scenario, sets, seed), account_id, month=month)
    con = _console()
    con.print(_people_table(amap))
    for line in _metrics_lines(amap.description["metrics"]):
        con.print(line)
    flags = amap.description["flags"]
    if flags:
        con.print(f"red flags ({len(flags)}):", style="bold red")
        for f in flags:
            con.print(f"  - {f['text']}")
    else:
        con.print("red flags: none", style="green")
    if amap.note:
        con.print(f"note: {amap.note}", style="yellow")
    if out is not None:
        from kamsim.dmu.draw import draw_unit

        path = draw_unit(amap.graph, out, title=_title(amap))
        click.echo(f"wrote {path}")


_STATS_COLUMNS = (
    ("accounts", "accounts", "{:.0f}"),
    ("coverage", "mean_coverage", "{:.2f}"),
    ("threads", "mean_multithreading", "{:.2f}"),
    ("EB covered", "share_dm_covered", "{:.0%}"),
    ("champion", "share_champion", "{:.0%}"),
    ("single-threaded", "share_single_threaded", "{:.0%}"),
    ("hostile influencer", "share_hostile_influencer", "{:.0%}"),
    ("newcomer in key role", "share_newcomer_in_key_role", "{:.0%}"),
    ("red flags / account", "mean_red_flags", "{:.2f}"),
)


@dmu.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@_sets
@handles_errors
def stats(scenario: str, sets: tuple[str, ...]) -> None:
    """Coverage, multi-threading and red flags of the starting portfolio, by tier."""
    from rich.table import Table

    from kamsim.dmu_maps import starting_stats

    spec = _load(scenario, sets, None)
    rows = starting_stats(spec)
    table = Table(title=f"decision units of {spec.name} at the start, by tier")
    table.add_column("tier")
    for title, _, _ in _STATS_COLUMNS:
        table.add_column(title, justify="right")
    for row in rows:
        table.add_row(row["tier"], *(fmt.format(row.get(key, 0.0))
                                     for _, key, fmt in _STATS_COLUMNS),
                      style="bold" if row["tier"] == "all" else None)
    _console().print(table)
