"""``kamsim``: the command line. Every command is a thin layer over ``import kamsim``;
heavy modules are imported inside the commands so ``kamsim --help`` answers at once."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kamsim import __version__

#: the largest seed an option takes: kamsim.spec.models.SEED_MAX (the store keeps seeds as
#: signed 64-bit integers), written out so that `kamsim --help` need not import pydantic
SEED_MAX = 2**63 - 1


def _console(stderr: bool = False, width: int = 140) -> Any:
    """The console every command prints through (``width`` when the output is not a
    terminal). Markup and emoji codes are off: what it prints is the user's and the data's
    text (descriptions, account and person ids, roles, query results, paths), in which
    ``[bold]`` or ``[/x]`` must stay as written (markup dropped them or raised MarkupError)
    and ``:x:`` must not become an emoji. Styled lines are built as ``rich.text.Text``."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=False, markup=False, emoji=False,
                   width=None if sys.stdout.isatty() else width)


class _Written:
    """What the running command has recorded or written, for the line a Ctrl-C prints.

    Runs are named here before the store write starts; after an interrupt the store is
    asked which of them it holds, since the interrupt may land just before or just after
    the COMMIT that records them."""

    def __init__(self) -> None:
        self.tracked = False  # the command tells here all it writes (run, compare)
        self.store: Path | None = None
        self.run_ids: list[str] = []
        self.group: str | None = None
        self.folder: str | None = None

    def track(self) -> None:
        """The running command names here everything it writes, so that "nothing was
        written" can be said of it (of other commands nothing is claimed)."""
        self.tracked = True

    def recording(self, store: Path, run_ids: list[str], group: str | None = None) -> None:
        self.store, self.run_ids, self.group = store, list(run_ids), group

    def told(self, interrupt: BaseException | None = None) -> str | None:
        """What is true after the ``interrupt``: which runs the store holds, which folder
        (None for a command that does not tell what it writes)."""
        if not self.tracked:
            return None
        parts = []
        if self.run_ids:
            from kamsim.store import WaitInterrupted, recorded

            ids = ", ".join(self.run_ids)
            found: list[str] | None = []
            if isinstance(interrupt, WaitInterrupted):
                # the write never opened the store: certain, and asking it would only wait
                # for the other process again
                runs = f"runs {ids} were" if len(self.run_ids) > 1 else f"run {ids} was"
                parts.append(f"{runs} not recorded: {self.store} is in use by another "
                             "process")
            else:
                found = recorded(self.store, self.run_ids)
            if found is None:
                parts.append(f"could not tell whether run {ids} was recorded in {self.store} "
                              "(kamsim runs list shows)")
            elif found and self.group:
                parts.append(f"runs {', '.join(found)} were recorded as group {self.group} "
                             f"in {self.store}")
            elif found:
                parts.append(f"run {found[0]} was recorded in {self.store}")
        if self.folder:
            parts.append(f"results written to {self.folder}/")
        if not parts:
            return "nothing was written."
        return "; ".join(parts) + "; nothing else was written."


#: the running command's writes (one command per process; reset by handles_errors)
_WRITTEN = _Written()


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn kamsim's typed errors into located lines on stderr and exit status 2, and a
    Ctrl-C into a line saying what was written, and exit status 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from kamsim.errors import InputError, KamsimError, Omitted

        global _WRITTEN
        _WRITTEN = _Written()
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            for p in exc.problems:
                click.echo(p.format(), err=True)
            n = sum(not isinstance(p, Omitted) for p in exc.problems)
            total = n + sum(p.count for p in exc.problems if isinstance(p, Omitted))
            found = (f"{n} problem{'s' if n != 1 else ''} found" if total == n else
                     f"{total} problems found, {n} of them listed")
            click.echo(f"{found}; nothing was written.", err=True)
            sys.exit(2)
        except KamsimError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:
            import signal

            # a second Ctrl-C while the store is asked must not end in a traceback
            previous = None
            with contextlib.suppress(ValueError):  # (not the main thread: nothing to do)
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                told = _WRITTEN.told(exc)
                click.echo(f"interrupted; {told}" if told else "interrupted.", err=True)
            finally:
                if previous is not None:  # (for a caller in the same process: tests)
                    signal.signal(signal.SIGINT, previous)
            sys.exit(130)

    return wrapper


def _progress(enabled: bool, label: str) -> Any:
    """A rich progress bar with ETA, or a no-op context."""
    import contextlib

    if not enabled:
        @contextlib.contextmanager
        def nothing() -> Any:
            yield None
        return nothing()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # the description is the scenario's name: shown as written, not read as markup
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=_console(stderr=True), transient=True)


class _Preload:
    """Imports what follows a run (rich for the table, DuckDB for the store: ~0.1 s) in a
    background thread while the replications run, started at the first progress report (a
    finished replication, or in this process a finished period): by then any worker
    processes exist (forking while a thread imports could leave a child with an import lock
    held by no one) and this process is only waiting for them."""

    def __init__(self, table: bool, store: bool):
        self.modules = [m for m, wanted in (("rich.console", table), ("rich.table", table),
                                            ("kamsim.report.terminal", table),
                                            ("duckdb", store), ("kamsim.store", store))
                        if wanted]
        self.started = False

    def start(self) -> None:
        if self.started or not self.modules:
            return
        self.started = True
        import threading

        # not a daemon: the interpreter waits for it before shutting down. A Ctrl-C that
        # ends the command while DuckDB is being imported here would otherwise finalize
        # the interpreter under that import and abort the process ("Critical nanobind
        # error"), instead of exiting 130
        threading.Thread(target=self._run, name="kamsim-preload", daemon=False).start()

    def _run(self) -> None:
        import importlib

        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the real import later reports any problem
                return


class _ReaderGone(io.RawIOBase):
    """Standard output's (or standard error's) raw file under the text stream that
    click.echo, rich and print write to, which drops what follows once whoever reads the
    output stopped reading (``kamsim trace ... | head -11``). The command then carries on
    with its work and ends with its own status: ``kamsim validate ... | head -1`` still
    tells its problems on stderr and exits 2 (and ``kamsim validate ... 2>&1 | head -1`` as
    well), ``kamsim plot ... | head -1`` writes every chart, ``kamsim run ... | head -3``
    records the run. The first write after the reader left raised BrokenPipeError, which
    ended the command there (status 1 from click or rich, or 0 from a catch around the
    command: a validate with problems said "ok" and nothing else).

    Every write reaches the file through here (by the text stream's buffer, which click
    writes to for an ASCII stdout, too), so this one place covers them all, and the
    interpreter's last flush on its way out as well."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self.raw = raw
        self.gone = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def isatty(self) -> bool:
        return bool(self.raw.isatty())

    def write(self, data: Any) -> int:
        if not self.gone:
            try:
                return int(self.raw.write(data))
            except BrokenPipeError:
                # Python's advice for a closed pipe (the signal module's docs, "Note on
                # SIGPIPE"): the descriptor to devnull, so that a worker process sharing it
                # writes nowhere instead of failing too
                self.gone = True
                _to_devnull(self.fileno())
        return memoryview(data).nbytes


def _guard_output() -> None:
    """Put standard output's and standard error's text streams over :class:`_ReaderGone`
    (same encoding and buffering). Started with one of them closed (``kamsim run ... >&-``,
    ``2>&-``), Python has no ``sys.stdout`` or ``sys.stderr`` (None: the first print, or the
    progress bar's ``sys.stderr.isatty()``, failed with an AttributeError, status 1, and
    the run was not recorded); its file descriptor then becomes devnull, so that nothing the
    command opens (the run store) takes that number, which worker processes and C libraries
    write to. Errors that cannot be seen so keep their status (2), as a finished run its 0."""
    for name, fd, errors, lines in (("stdout", 1, "strict", False),
                                    ("stderr", 2, "backslashreplace", True)):
        old = getattr(sys, name)
        raw: Any
        if old is None:
            _to_devnull(fd)
            raw = io.FileIO(fd, "w", closefd=False)
        else:
            buffer = getattr(old, "buffer", None)
            raw = getattr(buffer, "raw", buffer)  # (PYTHONUNBUFFERED: the raw file itself)
            if not isinstance(raw, io.RawIOBase):  # not a real file: a caller's own, left alone
                continue
            old.flush()  # (nothing is written yet: empty)
        setattr(sys, name, io.TextIOWrapper(
            io.BufferedWriter(_ReaderGone(raw)),
            encoding=getattr(old, "encoding", None) or "utf-8",
            errors=getattr(old, "errors", None) or errors,
            line_buffering=getattr(old, "line_buffering", lines),
            write_through=getattr(old, "write_through", False)))


def _to_devnull(fd: int) -> None:
    """Point the file descriptor ``fd`` (open or closed) at devnull."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kamsim")
def cli() -> None:
    """kamsim: rule engine and simulator for key-account strategy.

    \b
    Start with:  kamsim run scenarios/baseline.yaml
                 (in a checkout; elsewhere `kamsim examples` first copies the
                 shipped rules/ and scenarios/ into the current folder)
    Compare:     kamsim compare scenarios/equal_treatment.yaml scenarios/tiered.yaml
    Sweep:       kamsim sweep scenarios/baseline.yaml --vary capacity.account_managers=20:30:2
    Teach:       kamsim lesson list
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@handles_errors
def validate(paths: tuple[str, ...]) -> None:
    """Check rule files, scenarios (with the rule files they name), lessons, portfolios and
    contact exports (CSV, told apart by their header).

    Prints every problem as path:line:col and exits 2 if there is any."""
    from kamsim.errors import InputError
    from kamsim.spec.load import load_any, reading_once

    problems = []
    with reading_once():  # the rule files the scenarios share are read once for all
        for p in paths:
            try:
                kind, model = load_any(p)
                extra = ""
                if kind == "scenario":
                    from kamsim.tiering import check_start

                    check_start(model)  # a `unique` table's rows against the starting portfolio
                    extra = f" (with {len(model.hashes)} rule/data files"
                    if model.portfolio_rows is not None and model.portfolio_rows.drawn():
                        extra += f"; drawn, not in the CSV: {', '.join(model.portfolio_rows.drawn())}"
                    extra += ")"
                    for note in model.notes():  # not problems: told, located, after the ok line
                        extra += f"\n{note.loc}: note: {note.message}" + (
                            f" ({note.expected})" if note.expected else "")
                elif kind == "portfolio" and model.drawn():
                    extra = f" (drawn, not in the CSV: {', '.join(model.drawn())})"
                elif kind == "contacts":
                    extra = " (roles and account ids are checked against the scenario that names it)"
                click.echo(f"{p}: ok, {kind}{extra}")
            except InputError as exc:
                problems.extend(exc.problems)
    if problems:
        raise InputError(problems)


@cli.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@handles_errors
def examples(folder: str) -> None:
    """Copy the rules/ and scenarios/ (lessons included) that ship with kamsim into FOLDER
    (default: the current folder; made if missing), to run and edit them: `kamsim run
    scenarios/baseline.yaml` works there afterwards.

    Never overwrites: if any file is already there, each is told and nothing is copied."""
    from kamsim.examples import FOLDERS, copy_examples

    written = copy_examples(Path(folder))
    tops = " and ".join(f"{Path(folder) / name}/" for name in FOLDERS)
    click.echo(f"copied {len(written)} files into {tops}")


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder to write one <kind>.schema.json per file kind.")
@click.option("--kind", type=click.Choice(["scenario", "tiering", "service_levels", "stages",
                                           "stakeholders", "lesson"]), default=None)
@handles_errors
def schema(out_dir: str | None, kind: str | None) -> None:
    """Write the JSON Schema of each file kind (for editor validation and completion)."""
    from kamsim.io import make_folder
    from kamsim.spec.schema import json_schemas, write_schemas

    if out_dir is None:
        schemas = json_schemas()
        click.echo(json.dumps(schemas[kind] if kind else schemas, indent=2))
        return
    make_folder(Path(out_dir))
    for path in write_schemas(Path(out_dir), [kind] if kind else None):
        click.echo(f"wrote {path}")


def _sets(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                        help="Override a scenario value by its dotted path (repeatable).")(fn)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the per-account assignment (.csv or .parquet).")
@_sets
@handles_errors
def tier(scenario: str, out: str | None, sets: tuple[str, ...]) -> None:
    """Tier the scenario's starting portfolio and print the tier table."""
    from kamsim.report.terminal import tier_table
    from kamsim.spec.load import load_scenario
    from kamsim.tiering import tier_portfolio

    spec = load_scenario(scenario, list(sets))
    if out:  # a wrong --out is told before the work, and nothing is printed
        from kamsim.io import check_table_target

        check_table_target(Path(out))
    result = tier_portfolio(spec)
    _console().print(tier_table(result.summary(), spec.service.currency))
    if out:
        from kamsim.io import write_table

        write_table(result.per_account(), Path(out))
        click.echo(f"wrote {out}")


def _run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    opts: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--replications", "-r", type=click.IntRange(1), default=None,
                     help="Number of random futures (default: the scenario's)."),
        click.option("--seed", type=click.IntRange(0, SEED_MAX), default=None,
                     help="The scenario's seed, as `seed:` in its file: it seeds the random "
                          "futures and builds a generated portfolio and the decision units "
                          "(default: the scenario's)."),
        click.option("--workers", "-w", type=click.IntRange(1), default=None,
                     help="Worker processes (default: all cores)."),
        click.option("--dask", default=None, metavar="tcp://HOST:PORT",
                     help="Run on a Dask cluster (or set KAMSIM_DASK)."),
        _sets,
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _store_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--store, --no-store and --quiet, shared by the commands that run simulations."""
    for opt in reversed([
        click.option("--store", type=click.Path(dir_okay=False), default=None,
                     help="Run store (DuckDB file; default ./kamsim.duckdb or $KAMSIM_STORE)."),
        click.option("--no-store", is_flag=True, help="Do not record runs in the store."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]):
        fn = opt(fn)
    return fn


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@_run_options
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write the results folder (Parquet and CSV), atomically; an existing folder "
                   "is replaced only if it is empty or an earlier results folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@_store_options
@handles_errors
def run(scenario: str, replications: int | None, seed: int | None, workers: int | None,
        dask: str | None, sets: tuple[str, ...], out: str | None, as_json: bool,
        store: str | None, no_store: bool, quiet: bool) -> None:
    """Run a scenario and print retention, revenue, profit, cost to serve and lifetime
    value by tier, with confidence intervals."""
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    _WRITTEN.track()
    spec = load_scenario(scenario, list(sets))
    if out:
        from kamsim.io import check_writable_target

        check_writable_target(Path(out))
    store_path = None
    if not no_store:
        # before the simulation: a store the run cannot be recorded in is told at once
        from kamsim.store import check_target

        store_path = check_target(store)
    reps = replications or spec.scenario.replications
    preload = _Preload(table=not as_json, store=not no_store)
    with _progress(not quiet and not as_json and sys.stderr.isatty(),
                   f"{spec.name}") as prog:
        task = prog.add_task(spec.name, total=reps) if prog else None

        def progress(done: float, total: int) -> None:
            preload.start()
            if prog:
                prog.update(task, completed=done)

        result = simulate(spec, replications=replications, seed=seed, workers=workers,
                          dask=dask, progress=progress)
    summary = result.summary()
    con = None
    if not as_json:
        # the table as soon as the numbers exist; recording the run and writing the folder
        # follow (about a second for the baseline's event log), then the line naming the run
        from kamsim.report.terminal import summary_table

        con = _console()
        con.print(summary_table(summary))
    run_id = None
    # the store first: a run killed while its folder is written is still recorded (and
    # `kamsim runs export` rebuilds the folder), never a folder for a run the store lacks
    if store_path is not None:
        from kamsim.store import new_run_id, record_run

        run_id = new_run_id()
        _WRITTEN.recording(store_path, [run_id])
        record_run(result, store_path, run_id=run_id)
        summary["run_id"] = run_id
    if out:
        from kamsim.io import write_results

        write_results(result, Path(out))
        _WRITTEN.folder = out
    if con is None:
        click.echo(json.dumps(summary, indent=2))
        return
    extra = []
    if run_id:
        extra.append(f"run {run_id} recorded")
    if out:
        extra.append(f"results in {out}/")
    extra.append(f"{result.elapsed:.1f} s")
    con.print(", ".join(extra), style="dim")


_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """kamsim's own warnings as one line on stderr (no source location: it is the user's run,
    not our code, that the warning is about); others as Python shows them."""
    from kamsim.errors import KamsimWarning

    if issubclass(category, KamsimWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main() -> None:
    from kamsim.cli import commands  # noqa: F401  (registers the other command groups)

    _guard_output()  # before anything is printed (--help and --version as well)
    warnings.showwarning = _show_warning
    cli(prog_name="kamsim")


if __name__ == "__main__":
    # `python -m kamsim.cli.main` loads this file as __main__: use the package's copy so the
    # command groups register on the same `cli`
    from kamsim.cli.main import main as _main

    _main()
