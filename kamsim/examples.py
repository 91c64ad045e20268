"""The example rules, scenarios and lessons that ship with kamsim, and ``kamsim examples``,
which copies them into a folder of the user's.

The repository keeps them in its top-level ``rules/`` and ``scenarios/`` folders, where the
README's commands use them. A wheel carries the same two folders as package data under
``kamsim/_bundled/`` (pyproject.toml maps them there), side by side as in the repository, so
that a scenario's ``../rules/tiering.yaml`` still names the bundled rule file. A checkout, or
an editable install (``pip install -e .``), has no ``kamsim/_bundled/``: there the
repository's own folders are the bundled ones, so an edit to them is what kamsim reads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from kamsim.errors import InputError, Location, Problem, RunError

__all__ = ["FOLDERS", "bundled", "bundled_files", "copy_examples"]

#: the bundled folders, as ``kamsim examples`` lays them out
FOLDERS = ("rules", "scenarios")

#: what is bundled of them (pyproject.toml's package-data for kamsim._bundled says the same):
#: a checkout's folders may hold other files of the user's, which are not examples
_SUFFIXES = (".yaml", ".csv")


def bundled(name: str) -> Path:
    """The bundled folder ``name`` (``rules`` or ``scenarios``): the wheel's copy if kamsim
    was installed from one, else the checkout's own folder."""
    package = Path(__file__).resolve().parent
    for folder in (package / "_bundled" / name, package.parent / name):
        if folder.is_dir():
            return folder
    raise RunError(f"this kamsim has no bundled {name}/ folder (looked in {package / '_bundled'} "
                   f"and {package.parent}); reinstall it from its wheel or a checkout")


def bundled_files() -> list[tuple[Path, Path]]:
    """Each bundled file as (where it is, where it goes relative to the examples folder)."""
    files = []
    for name in FOLDERS:
        root = bundled(name)
        files += [(p, Path(name) / p.relative_to(root)) for p in sorted(root.rglob("*"))
                  if p.is_file() and p.suffix in _SUFFIXES]
    return files


def _clash(dest: Path, rel: Path) -> Problem | None:
    """What stands in the way of copying the bundled file ``rel`` into ``dest``: the file
    itself, or a file or a dangling symbolic link where one of its folders is to go (which
    ``exists()`` does not see: the folder could not be made there, and the copy failed
    with "File exists", naming no path)."""
    for part in reversed(rel.parents[:-1]):  # rules/, then deeper (the last is ".")
        folder = dest / part
        if folder.is_symlink() and not folder.exists():
            return Problem(Location(str(folder)),
                           f"is a symbolic link to {os.readlink(folder)}, which does not exist",
                           f"a folder, for the bundled {part}/")
        if folder.exists() and not folder.is_dir():
            return Problem(Location(str(folder)), "is a file",
                           f"a folder, for the bundled {part}/")
    target = dest / rel
    if target.exists() or target.is_symlink():
        return Problem(Location(str(target)), "exists",
                       "kamsim examples never overwrites a file: move it away, or copy into "
                       "another folder")
    return None


def copy_examples(dest: str | Path = ".") -> list[Path]:
    """Copy the bundled ``rules/`` and ``scenarios/`` into the folder ``dest`` (made if
    missing; its parent must exist), so that ``kamsim run scenarios/baseline.yaml`` works
    there; returns the files written.

    Never overwrites: every file that is already there (or a file where a folder is to go)
    is a problem, all told at once, and then nothing is copied. A copy that fails midway (a
    full disk) removes what it wrote, so the folder is as it was."""
    dest = Path(dest)
    if dest.is_symlink() and not dest.exists():
        raise RunError(f"{dest}: is a symbolic link to {os.readlink(dest)}, which does not "
                       "exist (a folder to copy into)")
    if dest.exists() and not dest.is_dir():
        raise RunError(f"{dest}: exists and is not a folder")
    if not dest.exists() and not dest.resolve().parent.is_dir():
        # as for --out: a mistyped name should not leave a chain of new folders behind
        raise RunError(f"{dest}: folder {dest.resolve().parent} does not exist")
    files = bundled_files()
    clashes = [c for c in dict.fromkeys(_clash(dest, rel) for _, rel in files) if c]
    if clashes:
        raise InputError(clashes)
    written: list[Path] = []
    made: list[Path] = []
    try:
        if not dest.exists():
            dest.mkdir()
            made.append(dest)
        for src, rel in files:
            target = dest / rel
            for folder in reversed(rel.parents[:-1]):
                if not (dest / folder).is_dir():
                    (dest / folder).mkdir()
                    made.append(dest / folder)
            # "x": a file that appeared since the check is not overwritten either
            with open(src, "rb") as fin, open(target, "xb") as fout:
                written.append(target)
                shutil.copyfileobj(fin, fout)
    except BaseException as exc:  # (a Ctrl-C too: the folder is left as it was)
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for folder in reversed(made):  # (innermost first; emptied above)
            with contextlib.suppress(OSError):  # never another process's files
                folder.rmdir()
        if isinstance(exc, OSError):
            # the path the system refused, when it names one: what to look at
            why = (f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror
                   else exc.strerror or exc)
            raise RunError(f"cannot copy the examples into {dest} ({why}); nothing was "
                           "copied") from None
        raise
    return written
