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

__all__ = ["atomic_path", "atomic_write_text", "write_table", "write_results",
           "check_writable_target", "require_folder", "move_into_place", "shareable"]


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


def require_folder(path: Path) -> None:
    """Refuse an output file whose folder does not exist (never create it: a mistyped
    ``--out`` should not leave a new folder behind)."""
    if not Path(path).resolve().parent.is_dir():
        raise RunError(f"--out {path}: folder {Path(path).parent} does not exist")


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file next to ``path`` to write to; when the block ends without error it
    gets the shareable mode and is renamed onto ``path``, otherwise it is removed."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        shareable(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable_target(path: Path) -> None:
    """Fail early (before a long run) if ``path`` cannot be created."""
    parent = path.resolve().parent
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path}: exists and is not a folder")
    if not parent.exists():
        raise RunError(f"--out {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise RunError(f"--out {path}: folder {parent} is not writable")


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_frame(df: Any, path: Path) -> None:
    """CSV or Parquet by suffix (Parquet through DuckDB, which needs no pyarrow)."""
    if path.suffix == ".parquet":
        import duckdb

        con = duckdb.connect()
        try:
            con.register("frame", df)
            target = str(path).replace("'", "''")
            con.execute(f"COPY frame TO '{target}' (FORMAT PARQUET)")
        finally:
            con.close()
    else:
        df.to_csv(path, index=False)


def write_table(df: Any, path: Path) -> None:
    """One table to ``path`` (.csv or .parquet), atomically."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise RunError(f"--out {path}: use a .csv or .parquet file name")
    if not path.resolve().parent.exists():
        raise RunError(f"--out {path}: folder {path.resolve().parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        _write_frame(df, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


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
    tmp = Path(tempfile.mkdtemp(dir=out.resolve().parent,
                                prefix=f".{out.name}.partial-{os.getpid()}-"))
    try:
        shareable(tmp, folder=True)
        for name, df in result.to_frames().items():
            _write_frame(df, tmp / f"{name}.parquet")
            _write_frame(df, tmp / f"{name}.csv")
        (tmp / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
        (tmp / "scenario.resolved.json").write_text(
            json.dumps(result.resolved, indent=2, default=str) + "\n")
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
