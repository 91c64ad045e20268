"""Runs as the report sees them: a summary, the resolved scenario and the results tables,
whether they come from a fresh Result, the run store or a results folder.

Presentation reads these tables and nothing else (never the engine)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kamsim.errors import RunError

__all__ = ["ReportRun", "from_result", "from_record", "from_folder", "load_runs",
           "tier_order", "stage_order"]

_FOLDER_TABLES = ("timeseries", "accounts", "stage_mix", "stage_flows", "churn", "utilisation")


@dataclass
class ReportRun:
    """One run: ``summary`` (as :meth:`Result.summary`), ``resolved`` scenario, ``frames``
    (table name -> DataFrame), and where it came from."""

    name: str
    summary: dict[str, Any]
    resolved: dict[str, Any]
    frames: dict[str, Any]
    run_id: str | None = None
    group: str | None = None
    origin: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tiers(self) -> tuple[str, ...]:
        return tier_order(self)

    @property
    def stages(self) -> tuple[str, ...]:
        return stage_order(self)


def tier_order(run: ReportRun) -> tuple[str, ...]:
    """Tiers in rule order (the summary keeps them in that order)."""
    return tuple(run.summary.get("by_tier", {}))


def stage_order(run: ReportRun) -> tuple[str, ...]:
    """The ladder's stages bottom to top, then the broken-down ("uncoupled") stage, from the
    resolved stage rules (else as first seen in the data, which keeps that order: the engine
    numbers the broken-down stage last). The charts read the last as the broken-down stage:
    without it its accounts had no band and a move into it was not counted as down."""
    rules = run.resolved.get("rules", {}).get("stages", {})
    stages = rules.get("stages")
    if stages:
        # (a resolved scenario names it; "uncoupled" is the name the stage rules default to)
        broken = (rules.get("uncoupled") or {}).get("name") or "uncoupled"
        return (*(s["name"] if isinstance(s, dict) else str(s) for s in stages), str(broken))
    mix = run.frames.get("stage_mix")
    return tuple(dict.fromkeys(mix["stage"])) if mix is not None and len(mix) else ()


def from_result(result: Any, run_id: str | None = None, group: str | None = None) -> ReportRun:
    """A fresh :class:`kamsim.results.Result`."""
    return ReportRun(name=result.scenario, summary=result.summary(), resolved=result.resolved,
                     frames=result.to_frames(), run_id=run_id, group=group,
                     origin="this session")


def from_record(record: Any) -> ReportRun:
    """A stored run (:class:`kamsim.store.RunRecord`); reads its tables now. Named by its
    label when it has one (a sweep's point: the scenario's name is the same for all)."""
    return ReportRun(name=str(record.meta.get("label")
                              or record.summary.get("scenario", record.run_id)),
                     summary=record.summary, resolved=record.resolved,
                     frames=record.tables(), run_id=record.run_id,
                     group=record.meta.get("group_id"), origin="the run store")


def _read_parquet(path: Path) -> Any:
    import duckdb

    con = duckdb.connect()
    try:
        return con.execute("SELECT * FROM read_parquet(?)", [str(path)]).df()
    finally:
        con.close()


def from_folder(folder: str | Path) -> ReportRun:
    """A results folder written by ``kamsim run --out`` (Parquet, summary.json and
    scenario.resolved.json); a RunError names what is missing."""
    folder = Path(folder)
    need = [folder / "summary.json", folder / "scenario.resolved.json",
            *(folder / f"{t}.parquet" for t in _FOLDER_TABLES)]
    missing = [p.name for p in need if not p.is_file()]
    if missing and all((folder / f"{t}.csv").is_file() for t in _FOLDER_TABLES):
        # a `runs export --format csv` folder: kamsim wrote it, so say what it lacks and how
        # to get what reports read, rather than that it is no results folder
        rid = _exported_run_id(folder) or "RUN_ID"
        raise RunError(f"{folder}: a CSV export; reports read the Parquet tables (report on "
                       f"the stored run: kamsim report {rid}, or export it as Parquet: kamsim "
                       f"runs export {rid} --out FOLDER)")
    if missing:
        raise RunError(f"{folder}: not a kamsim results folder (missing {', '.join(missing)})")
    try:
        summary = json.loads((folder / "summary.json").read_text())
        resolved = json.loads((folder / "scenario.resolved.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{folder}: cannot read the summary ({exc})") from None
    frames = {t: _read_parquet(folder / f"{t}.parquet") for t in _FOLDER_TABLES}
    return ReportRun(name=str(summary.get("scenario", folder.name)), summary=summary,
                     resolved=resolved, frames=frames, origin=f"folder {folder}")


def _exported_run_id(folder: Path) -> str | None:
    """The run id in the ``run.json`` of a ``kamsim runs export`` folder, if it has one."""
    try:
        rid = json.loads((folder / "run.json").read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return rid if isinstance(rid, str) else None


def load_runs(refs: Sequence[str], store: str | Path | None = None) -> list[ReportRun]:
    """Each ref is a results folder, a run id (or unique prefix) or a group id (all the
    runs of one comparison, oldest first). Unknown refs raise a RunError naming them."""
    runs: list[ReportRun] = []
    st = None
    try:
        for ref in refs:
            if Path(ref).is_dir():
                runs.append(from_folder(ref))
                continue
            if st is None:
                from kamsim import store as store_mod

                path = Path(store) if store is not None else store_mod.default_store_path()
                if not path.exists():
                    raise RunError(f"{ref}: not a results folder, and there is no run store "
                                   f"at {path} to look it up in")
                st = store_mod.open(path, read_only=True)
            try:
                runs.append(from_record(st.get(ref)))
            except RunError as no_run:
                try:
                    runs.extend(from_record(r) for r in st.group(ref))
                except RunError:
                    raise no_run from None
    finally:
        if st is not None:
            st.close()
    return runs
