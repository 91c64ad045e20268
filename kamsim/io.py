"""Writing results: atomically, so an interrupted run leaves nothing half-written.

A results folder is written into a temporary sibling folder and renamed into place when
complete; single files are written to a temporary file and renamed. Every writer goes through
:func:`atomic_path` or :func:`shareable`, so what kamsim writes gets the mode a plain
``open()``/``mkdir`` would give (the umask decides), not the private mode of a temporary."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kamsim.errors import RunError

__all__ = ["atomic_path", "atomic_write_text", "write_table", "write_results", "copy_to",
           "check_writable_target", "check_table_target", "require_folder", "make_folder",
           "move_into_place", "shareable", "check_folder"]


def _umask() -> int:
    """The process's umask. Read from /proc where there is one: setting it to read it back
    would leave it at 0 for a moment for every thread of the process."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shareable(path: Path, *, folder: bool = False) -> None:
    """Give ``path`` the mode ``open()`` (0666) or ``mkdir`` (0777) would, less the umask.

    mkstemp and mkdtemp make their files 0600 and folders 0700, and the rename that puts them
    in place keeps that: results, figures and pages are meant to be read by others."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def _reason(exc: OSError) -> str:
    """What went wrong, in the system's words (some OSErrors carry no ``strerror``)."""
    return exc.strerror or str(exc) or type(exc).__name__


def check_folder(path: Path, folder: Path, what: str | None = None) -> None:
    """Refuse ``path`` unless ``folder`` (where it goes) is an existing, writable folder;
    the message starts with ``what`` (default ``--out PATH``).

    Writability is tried, not asked: ``os.access`` says yes to root everywhere, also where
    nothing can be created (``/sys``, a read-only mount), so a file is made and removed."""
    what = what or f"--out {path}"
    if not folder.exists():
        # /tmp/file/sub/out: what is wrong is that /tmp/file is a file, not that sub is missing
        up = next(p for p in folder.parents if p.exists())
        if not up.is_dir():
            raise RunError(f"{what}: {up} is not a folder")
        raise RunError(f"{what}: folder {folder} does not exist")
    if not folder.is_dir():
        raise RunError(f"{what}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".kamsim-probe-")
    except OSError as exc:
        raise RunError(f"{what}: cannot write in folder {folder} ({_reason(exc)})") from None
    os.close(fd)
    os.unlink(probe)


def require_folder(path: Path) -> None:
    """Refuse an output file that cannot be written, before any work is done: its folder
    must exist (never created: a mistyped ``--out`` should not leave a new folder behind),
    be a folder and be writable, and the name must not be an existing folder."""
    path = Path(path)
    if path.is_dir():
        raise RunError(f"--out {path}: is a folder (expected a file name)")
    check_folder(path, path.resolve().parent)


def make_folder(path: Path) -> None:
    """Create the output folder ``path`` for the commands whose ``--out`` folder is created
    if missing; its parent must exist (as for a results folder: a mistyped ``--out`` should
    not leave a chain of new folders behind). A RunError, not a traceback, if it cannot be."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path}: exists and is not a folder")
    if path.is_dir():
        check_folder(path, path)
        return
    check_folder(path, path.resolve().parent)
    try:
        path.mkdir()
    except OSError as exc:
        raise RunError(f"--out {path}: cannot create the folder ({_reason(exc)})") from None


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file next to ``path`` to write to; when the block ends without error it
    gets the shareable mode and is renamed onto ``path``, otherwise it is removed. A system
    error while writing (disk full, a folder in the way) is a RunError naming ``path``."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise RunError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        shareable(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunError(f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: what every results folder kamsim writes holds (``run --out``, ``runs export``): the mark
#: of a folder that a new one may replace
RESULTS_MARK = "scenario.resolved.json"


def check_writable_target(path: Path) -> None:
    """Fail early (before a long run) if the folder ``path`` cannot be created or replaced:
    it must not be an existing file, and its parent must be an existing, writable folder.
    An existing folder is replaced wholesale, so it must be empty or an earlier results
    folder (it holds ``scenario.resolved.json``): ``--out ~/Documents`` must not delete a
    user's files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path}: exists and is not a folder")
    if path.is_dir() and not (path / RESULTS_MARK).is_file():
        try:
            has = sum(1 for _ in path.iterdir())
        except OSError as exc:
            raise RunError(f"--out {path}: cannot read the folder ({_reason(exc)})") from None
        if has:
            raise RunError(f"--out {path}: the folder holds {has} entries and is not a "
                           "kamsim results folder; it would be replaced whole (give a new "
                           "or empty folder, or an earlier results folder)")
    check_folder(path, path.resolve().parent)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")


def copy_to(con: Any, query: str, path: Path, fmt: str) -> None:
    """Write the rows of ``query`` on the DuckDB connection ``con`` to ``path`` as Parquet
    or CSV (``fmt``). Every table file kamsim writes goes through here (``run --out``,
    ``runs export``, ``tier --out``), so a table reads the same whichever command wrote it:
    booleans ``true``/``false``, an empty text as ``""`` and a missing value as an empty
    field (pandas' own writer gave ``True`` and wrote both as empty fields)."""
    options = "FORMAT PARQUET" if fmt == "parquet" else "FORMAT CSV, HEADER"
    target = str(path).replace("'", "''")
    con.execute(f"COPY ({query}) TO '{target}' ({options})")


def _write_frame(df: Any, path: Path) -> None:
    """CSV or Parquet by suffix, through DuckDB (which needs no pyarrow)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("frame", df)
        copy_to(con, "SELECT * FROM frame", path, "parquet" if path.suffix == ".parquet"
                else "csv")
    finally:
        con.close()


def check_table_target(path: Path) -> None:
    """Refuse a table file name :func:`write_table` could not write (checked before the
    work that makes the table)."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise RunError(f"--out {path}: use a .csv or .parquet file name")
    require_folder(path)


def write_table(df: Any, path: Path) -> None:
    """One table to ``path`` (.csv or .parquet), atomically."""
    path = Path(path)
    check_table_target(path)
    with atomic_path(path, suffix=path.suffix) as tmp:  # the suffix picks the format
        _write_frame(df, tmp)


def _remove_stale(out: Path) -> None:
    """Remove temporary folders that a killed writer left next to ``out`` (their pid is
    part of the name; only folders of processes that no longer exist are removed)."""
    parent = out.resolve().parent
    for pattern in (f".{out.name}.partial-*", f".{out.name}.old-*"):
        for stale in parent.glob(pattern):
            try:
                pid = int(stale.name.rsplit("-", 2)[-2] if ".partial-" in stale.name
                          else stale.name.rsplit("-", 1)[-1])
            except (ValueError, IndexError):
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                shutil.rmtree(stale, ignore_errors=True)
            except PermissionError:
                pass


def move_into_place(tmp: Path, out: Path) -> None:
    """Put the complete folder ``tmp`` at ``out`` by renaming; an existing ``out`` is set
    aside first and removed only once the new one is in place."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_results(result: Any, out: Path) -> Path:
    """The results folder: every table as Parquet and CSV, ``summary.json`` and
    ``scenario.resolved.json``. Built in a temporary folder next to ``out`` and moved into
    place in one rename; an existing ``out`` is replaced only once the new one is complete."""
    out = Path(out)
    check_writable_target(out)
    _remove_stale(out)
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.resolve().parent,
                                    prefix=f".{out.name}.partial-{os.getpid()}-"))
    except OSError as exc:
        raise RunError(f"cannot write {out}: {_reason(exc)}") from None
    try:
        shareable(tmp, folder=True)
        for name, df in result.to_frames().items():
            _write_frame(df, tmp / f"{name}.parquet")
            _write_frame(df, tmp / f"{name}.csv")
        (tmp / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
        (tmp / "scenario.resolved.json").write_text(
            json.dumps(result.resolved, indent=2, default=str) + "\n")
        move_into_place(tmp, out)
    except OSError as exc:  # disk full, the folder taken away under us
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(f"cannot write {out}: {_reason(exc)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
