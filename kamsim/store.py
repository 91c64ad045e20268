"""The run store: every run recorded in an embedded DuckDB database.

One file (default ``./kamsim.duckdb``, or ``$KAMSIM_STORE``, or an explicit path) holds:

- ``kamsim_schema``: one row, the store's schema version (so a later kamsim can migrate);
- ``runs``: one row per run (id, time, scenario, hash of the resolved scenario, seed, ...,
  the summary and the resolved scenario as JSON, headline means as plain columns);
- one table per results table of :meth:`kamsim.results.Result.to_frames` (``timeseries``,
  ``accounts``, ``events``, ...), each with a leading ``run_id`` column.

A run (or a comparison's group of runs) is written in one transaction: a crash or a Ctrl-C
part-way leaves the store as it was.
DuckDB lets one process write a file at a time; a locked store is retried for a few seconds
(a Ctrl-C ends the wait at once, see :class:`WaitInterrupted`).

Test hook: when ``KAMSIM_TEST_PAUSE_IN_STORE_WRITE`` is set to a number of seconds,
:func:`record_run` prints ``kamsim: paused in store write`` to stderr and sleeps that long
inside the open transaction, just before COMMIT, so a test can kill the process there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kamsim.errors import RunError

__all__ = ["SCHEMA_VERSION", "RESULT_TABLES", "default_store_path", "scenario_hash",
           "record_run", "record_runs", "check_target", "recorded", "open", "Store",
           "RunRecord", "StoreInUse", "WaitInterrupted"]

SCHEMA_VERSION = 1
#: the results tables a run may have, in the order :meth:`Result.to_frames` gives them
RESULT_TABLES = ("timeseries", "accounts", "events", "stage_mix", "stage_flows", "churn",
                 "utilisation")
#: seconds to keep retrying a store another process holds (overridable for tests)
LOCK_WAIT_S = float(os.environ.get("KAMSIM_STORE_LOCK_WAIT", "5"))
PAUSE_ENV = "KAMSIM_TEST_PAUSE_IN_STORE_WRITE"

_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    created_at VARCHAR NOT NULL,
    scenario VARCHAR NOT NULL,
    scenario_hash VARCHAR NOT NULL,
    seed BIGINT,
    replications INTEGER,
    kamsim_version VARCHAR,
    group_id VARCHAR,
    label VARCHAR,
    elapsed_s DOUBLE,
    retention_mean DOUBLE,
    revenue_mean DOUBLE,
    profit_mean DOUBLE,
    table_rows VARCHAR,
    summary VARCHAR NOT NULL,
    resolved VARCHAR NOT NULL
)"""
_META_COLS = ("run_id", "created_at", "scenario", "scenario_hash", "seed", "replications",
              "kamsim_version", "group_id", "label", "elapsed_s", "retention_mean",
              "revenue_mean", "profit_mean")


def default_store_path() -> Path:
    """``$KAMSIM_STORE`` if set, else ``kamsim.duckdb`` in the current folder."""
    return Path(os.environ.get("KAMSIM_STORE") or "kamsim.duckdb")


def scenario_hash(resolved: dict[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the resolved scenario as sorted JSON: two runs
    with the same hash ran the same model, rules and overrides."""
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_run_id() -> str:
    """``r`` + 8 hex digits: short enough to type, random enough not to collide in a store."""
    return "r" + uuid.uuid4().hex[:8]


# ------------------------------------------------------------------ connections


def _resolve(path: str | Path | None) -> Path:
    return Path(path) if path is not None else default_store_path()


#: DuckDB's words for a file another process holds. They follow the file's quoted path, which
#: may say "lock" itself (/tmp/blocks/s.duckdb, ~/clock.duckdb): a store that fails to open
#: for another reason must not be waited on and called "in use".
_LOCK_HELD = re.compile(r'Could not set lock on file ".*": Conflicting lock is held', re.S)

#: DuckDB's magic bytes, at this offset of every database file
_DUCKDB_MAGIC = b"DUCK"
_DUCKDB_MAGIC_AT = 8


def _check_existing(path: Path) -> None:
    """A RunError unless the existing ``path`` is a file DuckDB can open as a database.

    DuckDB itself opens an existing .csv, .parquet or .json path as an empty in-memory
    database (a run "recorded" there is lost, and a read-only open fails obscurely), so the
    file's magic bytes are checked here. (An empty file is refused too, as DuckDB refuses
    it: "exists, but it is not a valid DuckDB database file".)"""
    if path.is_dir():
        raise RunError(f"run store {path} is a folder, not a file (name a file in it, "
                       f"e.g. {path / 'kamsim.duckdb'})")
    try:
        with path.open("rb") as fh:
            head = fh.read(_DUCKDB_MAGIC_AT + len(_DUCKDB_MAGIC))
    except OSError as exc:
        raise RunError(f"cannot open run store {path}: {exc.strerror or exc}") from None
    if head[_DUCKDB_MAGIC_AT:] != _DUCKDB_MAGIC:
        raise RunError(f"not a kamsim run store: {path} (the file is not a DuckDB database)")


def check_target(path: str | Path | None = None) -> Path:
    """Fail early (before a long simulation) if a run cannot be recorded at ``path``
    (default :func:`default_store_path`): a folder, a missing or read-only folder, a file
    that is not a kamsim store. Returns the path. Creates nothing."""
    path = _resolve(path)
    parent = path.resolve().parent
    if path.exists():
        _check_existing(path)
        if not os.access(path, os.R_OK | os.W_OK):
            raise RunError(f"run store {path} is not writable")
        try:
            con = _connect(path, read_only=True, lock_wait=0.0)
        except StoreInUse:
            return path  # the write waits for it, as it would have anyway
        try:
            _schema_state(con, path)
        finally:
            con.close()
        return path
    from kamsim.io import check_folder

    check_folder(path, parent, f"run store {path}")
    return path


class StoreInUse(RunError):
    """The store stayed locked by another process for the whole wait."""


class WaitInterrupted(KeyboardInterrupt):
    """A Ctrl-C that ended the wait for a store another process holds. The write had not
    opened the store, so none of it is there: what a Ctrl-C leaves can be told without
    asking the store (which that process still holds)."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


def _connect(path: Path, read_only: bool, create: bool = False,
             lock_wait: float | None = None, sandboxed: bool = False,
             interrupted: Callable[[], None] | None = None) -> Any:
    """A DuckDB connection to ``path`` (created only if ``create``), retrying while another
    process holds the lock (``lock_wait`` seconds, default LOCK_WAIT_S); every failure
    becomes a RunError that names the file (a StoreInUse for the lock).

    ``interrupted``: called between the retries; a caller that holds Ctrl-C (a store write)
    raises KeyboardInterrupt from it, and the wait ends at once with a WaitInterrupted
    (without it the held Ctrl-C waited out the whole LOCK_WAIT_S).

    ``sandboxed``: a read-only connection that can touch no other file, for user SQL (see
    :func:`_open_sandboxed`)."""
    import duckdb

    if not create and not path.exists():
        raise RunError(f"no run store at {path} (run `kamsim run` first, or pass --store)")
    if path.exists():
        _check_existing(path)
    if not read_only and not path.resolve().parent.is_dir():
        raise RunError(f"run store {path}: folder {path.resolve().parent} does not exist")
    wait = LOCK_WAIT_S if lock_wait is None else lock_wait
    deadline = time.monotonic() + wait
    while True:
        try:
            if sandboxed:
                return _open_sandboxed(duckdb, path)
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            msg = str(exc)
            if _LOCK_HELD.search(msg):
                if interrupted is not None:
                    try:
                        interrupted()
                    except KeyboardInterrupt:
                        raise WaitInterrupted(path) from None
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise StoreInUse(f"run store {path} is in use by another process "
                                 f"(waited {wait:g} s; try again when it has finished)"
                                 ) from None
            if "not a valid DuckDB database" in msg:
                raise RunError(f"not a kamsim run store: {path} "
                               "(the file is not a DuckDB database)") from None
            raise RunError(f"cannot open run store {path}: {msg}") from None
        except duckdb.ResourceInUseException:
            # (only a sandboxed open meets this: a plain one shares the open database)
            raise RunError(f"run store {path} is open for writing elsewhere in this process "
                           "(close that Store first)") from None
        except duckdb.Error as exc:
            raise RunError(f"cannot open run store {path}: {exc}") from None


def _open_sandboxed(duckdb: Any, path: Path) -> Any:
    """A connection that reads the store at ``path`` and can change or touch no file.

    DuckDB shares one database instance between the connections to one file in a process,
    and ``enable_external_access``/``lock_configuration`` hold for the whole instance: set
    on a connection to the file itself they would stop every other open Store of it in this
    process from exporting, for good. So the settings go on an in-memory database of its
    own, which attaches the store read-only first (a file opened plainly elsewhere in this
    process read-only can be attached; one open for writing cannot)."""
    con = duckdb.connect(":memory:")
    try:
        target = str(path).replace("'", "''")
        con.execute(f"ATTACH '{target}' AS store (READ_ONLY)")
        con.execute("USE store")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _tables(con: Any) -> set[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
                       ).fetchall()
    return {r[0] for r in rows}


def _schema_state(con: Any, path: Path) -> bool:
    """True if ``con`` holds a kamsim store, False if the database is empty; a RunError if
    it holds something else or a newer schema than this kamsim reads."""
    names = _tables(con)
    if "kamsim_schema" not in names:
        if names:
            raise RunError(f"not a kamsim run store: {path} (a DuckDB database without a "
                           "kamsim_schema table)")
        return False
    version = con.execute("SELECT max(version) FROM kamsim_schema").fetchone()[0]
    if version is None or version > SCHEMA_VERSION:
        raise RunError(f"run store {path} has schema version {version}; this kamsim reads "
                       f"version {SCHEMA_VERSION} (upgrade kamsim)")
    return True


def _ensure_schema(con: Any, path: Path) -> None:
    """Create the store's tables in an empty database (inside the caller's transaction)."""
    from kamsim import __version__

    if _schema_state(con, path):
        # Later schema versions add their migrations here, keyed by the version found.
        return
    con.execute("CREATE TABLE kamsim_schema (version INTEGER NOT NULL, created_at VARCHAR, "
                "kamsim_version VARCHAR)")
    con.execute("INSERT INTO kamsim_schema VALUES (?, ?, ?)",
                [SCHEMA_VERSION, _now(), __version__])
    con.execute(_RUNS_DDL)


def _now() -> str:
    # microseconds: runs are listed in order of ``created_at``, and two runs recorded within
    # the same second (a fast study, a script) must still list in the order they were made
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _n_rows(table: Any) -> int:
    """Rows of a DataFrame, of a dict of equal-length numpy columns, or 0 for None."""
    if table is None:
        return 0
    if isinstance(table, dict):
        return len(next(iter(table.values()))) if table else 0
    return len(table)


def _insert_frame(con: Any, table: str, df: Any, run_id: str) -> None:
    """Append ``df`` (a DataFrame, or a dict of numpy columns: DuckDB reads either without
    a copy) to ``table`` under ``run_id``; the table is created from the frame's schema on
    first use, and columns a newer model adds are added to it."""
    con.register("_kamsim_frame", df)
    try:
        described = con.execute("DESCRIBE SELECT * FROM _kamsim_frame").fetchall()
        # A column with no values at all has DuckDB type NULL; store it as text.
        cols = [(c[0], "VARCHAR" if c[1] == '"NULL"' else c[1]) for c in described]
        if table not in _tables(con):
            body = ", ".join(f"{_quote(n)} {t}" for n, t in [("run_id", "VARCHAR"), *cols])
            con.execute(f"CREATE TABLE {_quote(table)} ({body})")
        else:
            have = {r[0] for r in con.execute(f"DESCRIBE {_quote(table)}").fetchall()}
            for n, t in cols:
                if n not in have:
                    con.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(n)} {t}")
        con.execute(f"INSERT INTO {_quote(table)} BY NAME "
                    "SELECT CAST($run_id AS VARCHAR) AS run_id, * FROM _kamsim_frame",
                    {"run_id": run_id})
    finally:
        con.unregister("_kamsim_frame")


# ------------------------------------------------------------------ writing


def record_run(result: Any, path: str | Path | None = None, *, group: str | None = None,
               label: str | None = None, run_id: str | None = None) -> str:
    """Record ``result`` (a :class:`kamsim.results.Result`) in the store at ``path`` and
    return its new run id (``run_id`` if given: a caller that must tell, after a Ctrl-C,
    whether the run was recorded names it first). All of it is written in one
    transaction, or none of it."""
    return record_runs([result], path, group=group, labels=[label],
                       run_ids=None if run_id is None else [run_id])[0]


def record_runs(results: Sequence[Any], path: str | Path | None = None, *,
                group: str | None = None, labels: Sequence[str | None] | None = None,
                run_ids: Sequence[str] | None = None) -> list[str]:
    """Record several results (a comparison's runs, under one ``group``) in one
    transaction: all of them or none, so no group is ever left with part of its runs.
    Returns their run ids, in order (``run_ids`` if given)."""
    path = _resolve(path)
    ids = list(run_ids) if run_ids is not None else [new_run_id() for _ in results]
    labels = list(labels) if labels is not None else [None] * len(results)
    # The tables are built before the store is opened, so the lock is held only to write.
    # A Result gives them as numpy columns, which DuckDB scans directly: no pandas import
    # and no DataFrames to build (about half of the time of a write).
    rows = [_run_row(result, rid, group, label)
            for result, rid, label in zip(results, ids, labels, strict=True)]
    with _ctrl_c_between_statements() as check:
        wal = path.with_name(path.name + ".wal")
        existed, wal_existed = path.exists(), wal.exists()
        con = _connect(path, read_only=False, create=True, interrupted=check)
        committed = False
        try:
            import duckdb

            try:
                # one thread: DuckDB's scan of numpy string (object) columns contends for
                # the GIL from several threads (a baseline run's write: ~0.42 -> ~0.35 s)
                con.execute("SET threads = 1")
                con.execute("BEGIN TRANSACTION")
                try:
                    _ensure_schema(con, path)
                    for row, frames in rows:
                        check()
                        names = ", ".join(row)
                        con.execute(f"INSERT INTO runs ({names}) VALUES "
                                    f"({', '.join('?' * len(row))})", list(row.values()))
                        for table, df in frames.items():
                            check()
                            # An empty frame has no column types to create a table from.
                            if _n_rows(df):
                                _insert_frame(con, table, df, row["run_id"])
                    pause = os.environ.get(PAUSE_ENV)
                    if pause:
                        print("kamsim: paused in store write", file=sys.stderr, flush=True)
                        until = time.monotonic() + float(pause)
                        while time.monotonic() < until:
                            check()
                            time.sleep(0.05)
                    check()
                    con.execute("COMMIT")
                    committed = True
                except BaseException:
                    # (nothing to roll back if BEGIN failed: that error must not replace
                    # the first one)
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    raise
            except duckdb.InterruptException:
                raise KeyboardInterrupt from None
            except duckdb.Error as exc:
                raise RunError(f"cannot record the run in {path}: {exc}") from None
        finally:
            # A store this write created and left without a run (a Ctrl-C or an error
            # before the COMMIT) is removed: an empty file behind "nothing was written"
            # would be a store nobody made. Asked while the lock is still held, so a store
            # another process made in the meantime (with its runs) is never taken for it.
            empty = not existed and not committed and not _has_runs(con)
            con.close()
            if empty:
                for leftover in (path, *(() if wal_existed else (wal,))):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
    return ids


def _has_runs(con: Any) -> bool:
    """Whether the store open on ``con`` holds a committed run (True when it cannot be
    told: a file is only ever removed when it surely holds none)."""
    import duckdb

    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()"
                                            ).fetchall()}
        if "runs" not in tables:
            return False
        return bool(con.execute("SELECT count(*) FROM runs").fetchone()[0])
    except duckdb.Error:
        return True


@contextlib.contextmanager
def _ctrl_c_between_statements() -> Iterator[Callable[[], None]]:
    """Hold a Ctrl-C while the store is written: the block calls the function it is given
    between statements, which raises KeyboardInterrupt if one came (the write then rolls
    back), and one that comes during the COMMIT (the run is recorded) or the close is raised
    after the block. DuckDB must not take the signal itself: interrupted inside a
    statement it leaves errors such as "Query interrupted" or "Current transaction is
    aborted" in place of the user's interrupt."""
    caught: list[int] = []

    def check() -> None:
        if caught:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread: no Ctrl-C comes here
        yield lambda: None
        return
    try:
        yield check
    except KeyboardInterrupt:
        raise  # (raised by check(), or the lock wait's WaitInterrupted: kept as it is)
    except BaseException:
        # A Ctrl-C held while the block then failed (a DuckDB error in the statement it
        # came during, say) is still the user's interrupt: exit 130, not the block's error.
        if caught:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    check()


def _run_row(result: Any, run_id: str, group: str | None, label: str | None
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``runs`` row of ``result`` and its results tables."""
    from kamsim import __version__

    summary = result.summary()
    columns = getattr(result, "table_columns", None)
    frames = columns() if columns is not None else result.to_frames()

    def headline(name: str) -> float | None:
        v = summary.get(name)
        return float(v["mean"]) if isinstance(v, dict) and "mean" in v else None

    row = {
        "run_id": run_id, "created_at": _now(), "scenario": result.scenario,
        "scenario_hash": scenario_hash(result.resolved), "seed": int(result.seed),
        "replications": int(result.replications), "kamsim_version": __version__,
        "group_id": group, "label": label, "elapsed_s": float(result.elapsed),
        "retention_mean": headline("retention"), "revenue_mean": headline("revenue"),
        "profit_mean": headline("profit"),
        "table_rows": json.dumps({k: _n_rows(df) for k, df in frames.items()}),
        "summary": json.dumps(summary, default=str),
        "resolved": json.dumps(result.resolved, default=str),
    }
    return row, frames


def recorded(path: str | Path | None, run_ids: Sequence[str]) -> list[str] | None:
    """Which of ``run_ids`` the store at ``path`` holds (what a Ctrl-C during a write left
    there), or None when that cannot be told (the store cannot be read)."""
    path = _resolve(path)
    if not run_ids:
        return []
    if not path.exists():
        return []
    try:
        con = _connect(path, read_only=True, lock_wait=1.0)
    except RunError:
        return None
    try:
        if not _schema_state(con, path):
            return []
        found = {r[0] for r in con.execute(
            "SELECT run_id FROM runs WHERE list_contains(?, run_id)",
            [list(run_ids)]).fetchall()}
    except Exception:  # noqa: BLE001 - an unreadable store: say that we cannot tell
        return None
    finally:
        con.close()
    return [r for r in run_ids if r in found]


# ------------------------------------------------------------------ reading


@dataclass
class RunRecord:
    """One stored run: its metadata, summary and resolved scenario; the results tables are
    read from the store only when :meth:`tables` is called."""

    run_id: str
    meta: dict[str, Any]
    summary: dict[str, Any]
    resolved: dict[str, Any]
    _loader: Callable[[str], dict[str, Any]] = field(repr=False, compare=False,
                                                     default=lambda _rid: {})

    def tables(self) -> dict[str, Any]:
        """Every results table of this run as a pandas DataFrame, by name (without the
        ``run_id`` column; tables the run had no rows in are empty)."""
        return self._loader(self.run_id)


class Store:
    """An open run store. Use :func:`open`; close it (or use ``with``) when done."""

    def __init__(self, path: Path, read_only: bool = True):
        self.path = path
        self.read_only = read_only
        self._con: Any = None
        self._con = self._open()

    # -- connection handling

    def _open(self) -> Any:
        con = _connect(self.path, self.read_only)
        try:
            self._initialised = _schema_state(con, self.path)
        except BaseException:
            con.close()
            raise
        return con

    def _c(self) -> Any:
        if self._con is None:
            self._con = self._open()
        return self._con

    def close(self) -> None:
        """Release the file (and its lock)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, read_only={self.read_only})"

    # -- reading

    def runs(self) -> Any:
        """One row per run, oldest first: id, created_at, scenario, hash, seed, replications,
        version, group, label, profit and retention (headline means)."""
        import pandas as pd

        cols = ["id", "created_at", "scenario", "hash", "seed", "replications", "version",
                "group", "label", "profit", "retention"]
        if not self._initialised:
            return pd.DataFrame(columns=cols)
        return self._c().execute(
            "SELECT run_id AS id, created_at, scenario, scenario_hash AS hash, seed, "
            "replications, kamsim_version AS version, group_id AS \"group\", label, "
            "profit_mean AS profit, retention_mean AS retention FROM runs "
            "ORDER BY created_at, run_id").df()

    def resolve_id(self, run_id: str) -> str:
        """The full id of the run ``run_id`` names (an id or a unique prefix of one)."""
        ids: list[str] = []
        if self._initialised:
            ids = [r[0] for r in self._c().execute(
                "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id",
                [run_id]).fetchall()] if run_id else []
        if run_id in ids:
            return run_id
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            raise RunError(f"run id {run_id!r} is ambiguous in store {self.path} "
                           f"(matches {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})")
        members = self.group_ids(run_id)
        if members:  # a group's id given for one run's: said so, with what takes a group
            raise RunError(f"{run_id} is a group of {len(members)} run"
                           f"{'s' if len(members) != 1 else ''} ({', '.join(members)}), not "
                           f"a run: give one of its runs, or the group to kamsim compare, "
                           f"kamsim report or kamsim runs show")
        raise RunError(f"no run {run_id!r} in store {self.path} "
                       "(kamsim runs list shows the runs)")

    def group_ids(self, group_id: str) -> list[str]:
        """The ids of the runs recorded under ``group_id``, oldest first (empty if none)."""
        if not self._initialised or not group_id:
            return []
        return [r[0] for r in self._c().execute(
            "SELECT run_id FROM runs WHERE group_id = ? ORDER BY created_at, run_id",
            [group_id]).fetchall()]

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id`` (or a unique prefix of it); a RunError if there is none."""
        rid = self.resolve_id(run_id)
        cur = self._c().execute(
            f"SELECT {', '.join(_META_COLS)}, table_rows, summary, resolved FROM runs "
            "WHERE run_id = ?", [rid])
        values = cur.fetchone()
        meta = dict(zip(_META_COLS, values[: len(_META_COLS)], strict=True))
        meta["table_rows"] = json.loads(values[-3] or "{}")
        return RunRecord(rid, meta, json.loads(values[-2]), json.loads(values[-1]),
                         self._load_tables)

    def group(self, group_id: str) -> list[RunRecord]:
        """The runs recorded under ``group_id`` (one comparison), oldest first."""
        ids = self.group_ids(group_id)
        if not ids:
            raise RunError(f"no group {group_id!r} in store {self.path} "
                           "(kamsim runs list shows each run's group)")
        return [self.get(rid) for rid in ids]

    def get_many(self, ref: str) -> list[RunRecord]:
        """The run ``ref`` names (an id or a unique prefix), or, if it is a group's id, the
        group's runs, oldest first: what commands that take several runs accept."""
        ids = self.group_ids(ref)
        if ids and not self._run_matches(ref):  # (a run's prefix is a run's, as in get)
            return [self.get(rid) for rid in ids]
        return [self.get(ref)]

    def _run_matches(self, prefix: str) -> bool:
        return bool(self._initialised and prefix and self._c().execute(
            "SELECT count(*) FROM runs WHERE starts_with(run_id, ?)", [prefix]).fetchone()[0])

    def _table_names(self, rid: str) -> list[str]:
        rows = self._c().execute("SELECT table_rows FROM runs WHERE run_id = ?",
                                 [rid]).fetchone()
        listed = list(json.loads(rows[0] or "{}")) if rows else []
        return listed or [t for t in RESULT_TABLES if t in _tables(self._c())]

    def _load_tables(self, rid: str) -> dict[str, Any]:
        import pandas as pd

        # A record outliving its closed store opens the file just for this read, so the
        # process does not keep holding it (a later write in this process would conflict).
        was_closed = self._con is None
        try:
            con = self._c()
            present = _tables(con)
            out: dict[str, Any] = {}
            for name in self._table_names(rid):
                if name in present:
                    out[name] = con.execute(
                        f"SELECT * EXCLUDE (run_id) FROM {_quote(name)} WHERE run_id = ?",
                        [rid]).df()
                else:
                    out[name] = pd.DataFrame()
            return out
        finally:
            if was_closed:
                self.close()

    def query(self, sql: str) -> Any:
        """The result of ``sql`` as a DataFrame. It runs on a connection of its own, opened
        read-only and with DuckDB's file access switched off (and that setting locked), so
        a statement that would change the store (INSERT, DELETE, DROP, ...) or touch any
        other file (COPY ... TO, EXPORT, ATTACH, read_csv, INSTALL) fails with a
        RunError."""
        import duckdb

        # A store open for writing cannot be attached again in this process: this Store's
        # own connection is closed first then, and reopened when next needed.
        if not self.read_only:
            self.close()
        con = _connect(self.path, read_only=True, sandboxed=True)
        try:
            cur = con.execute(sql)
            if cur is None:  # DuckDB returns no cursor for text with no statement in it
                raise RunError("query has no SQL statement in it (only spaces, ';' or "
                               "comments); give a query such as 'SELECT * FROM runs'")
            if cur.description is None:
                import pandas as pd

                return pd.DataFrame()
            return cur.df()
        except duckdb.Error as exc:
            msg = str(exc).splitlines()[0]
            if "read-only" in msg or "disabled by configuration" in msg or \
                    "configuration has been locked" in msg:
                raise RunError(f"query refused: the run store {self.path} is read-only here "
                               f"and no other file may be touched; only queries that read "
                               f"the store are allowed ({msg})") from None
            raise RunError(f"query failed: {msg}") from None
        finally:
            con.close()

    # -- writing

    def delete(self, run_id: str) -> str:
        """Remove a run and all its rows, in one transaction; returns the full id removed."""
        if self.read_only:
            raise RunError(f"run store {self.path} is open read-only; "
                           "open(path, read_only=False) to delete")
        rid = self.resolve_id(run_id)
        con = self._c()
        with _ctrl_c_between_statements() as check:
            con.execute("BEGIN TRANSACTION")
            try:
                for name in RESULT_TABLES + tuple(sorted(_tables(con) - set(RESULT_TABLES))):
                    check()
                    if name in ("runs", "kamsim_schema") or name not in _tables(con):
                        continue
                    con.execute(f"DELETE FROM {_quote(name)} WHERE run_id = ?", [rid])
                check()
                con.execute("DELETE FROM runs WHERE run_id = ?", [rid])
                con.execute("COMMIT")
            except BaseException:
                import duckdb

                with contextlib.suppress(duckdb.Error):  # (the first error is the one to tell)
                    con.execute("ROLLBACK")
                raise
        return rid

    def export(self, run_id: str, fmt: Literal["parquet", "csv"], out: str | Path) -> Path:
        """Write the run's tables as ``<table>.<fmt>`` plus ``summary.json``,
        ``scenario.resolved.json`` and ``run.json`` into the folder ``out``, atomically:
        built in a temporary sibling folder and renamed into place when complete."""
        from kamsim.io import check_writable_target, copy_to, move_into_place, shareable

        if fmt not in ("parquet", "csv"):
            raise RunError(f"export format {fmt!r}: use 'parquet' or 'csv'")
        out = Path(out)
        rec = self.get(run_id)
        check_writable_target(out)
        con = self._c()
        present = _tables(con)
        tmp = Path(tempfile.mkdtemp(dir=out.resolve().parent, prefix=f".{out.name}.partial-"))
        try:
            shareable(tmp, folder=True)  # mkdtemp's folder is private (0700)
            for name in self._table_names(rec.run_id):
                # A table no run ever had rows in does not exist yet: no file for it.
                if name in present:
                    # run ids are ours (resolved above), so quoting them inline is safe
                    copy_to(con, f"SELECT * EXCLUDE (run_id) FROM {_quote(name)} "
                                 f"WHERE run_id = '{rec.run_id}'", tmp / f"{name}.{fmt}", fmt)
            (tmp / "summary.json").write_text(json.dumps(rec.summary, indent=2) + "\n")
            (tmp / "scenario.resolved.json").write_text(
                json.dumps(rec.resolved, indent=2, default=str) + "\n")
            (tmp / "run.json").write_text(json.dumps(rec.meta, indent=2, default=str) + "\n")
            move_into_place(tmp, out)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RunError(f"cannot export to {out}: {exc.strerror or exc}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out


def open(path: str | Path | None = None, *, read_only: bool = True) -> Store:  # noqa: A001
    """Open the run store at ``path`` (default :func:`default_store_path`).

    Opening never creates a file (only :func:`record_run` does): a missing store, a file
    that is not a DuckDB database, or a database that is not a kamsim store are RunErrors
    that name the path. ``read_only=False`` is needed only for :meth:`Store.delete`."""
    return Store(_resolve(path), read_only=read_only)

