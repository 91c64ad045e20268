"""Runs as the report sees them: a summary, the resolved scenario and the results tables,
whether they come from a fresh Result, the run store or a results folder.

Presentation reads these tables and nothing else (never the engine)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kamsim.errors import InputError, Location, Problem, RunError
from kamsim.report.terminal import is_number

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
    ladder = _resolved_stages(run.resolved)
    if ladder:
        return ladder
    mix = run.frames.get("stage_mix")
    return tuple(dict.fromkeys(mix["stage"])) if mix is not None and len(mix) else ()


def _resolved_stages(resolved: dict[str, Any]) -> tuple[str, ...]:
    """The stages a resolved scenario's stage rules name, as :func:`stage_order` gives them
    (none when it names no ladder)."""
    rules = (resolved.get("rules") or {}).get("stages") or {}
    stages = rules.get("stages")
    if not stages:
        return ()
    # (a resolved scenario names it; "uncoupled" is the name the stage rules default to)
    broken = (rules.get("uncoupled") or {}).get("name") or "uncoupled"
    return (*(s["name"] if isinstance(s, dict) else str(s) for s in stages), str(broken))


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


#: the columns of each folder table the report reads (a folder from another kamsim version
#: may have more; one without these cannot be charted)
_FOLDER_COLUMNS = {
    "timeseries": ("replication", "period", "month", "tier", "profit"),
    "accounts": ("replication", "account_id", "initial_tier", "active", "churn_period",
                 "revenue", "cost_to_serve", "profit", "clv", "starting"),
    "stage_mix": ("replication", "period", "month", "tier", "stage", "accounts"),
    "stage_flows": ("replication", "period", "tier", "from_stage", "to_stage", "accounts"),
    "churn": ("replication", "period", "tier", "cause", "accounts"),
    "utilisation": ("replication", "period", "month", "resource", "utilisation"),
}
#: of those, the ones that are numbers (the rest are names)
_TEXT_COLUMNS = {"tier", "account_id", "initial_tier", "stage", "from_stage", "to_stage",
                 "cause", "resource"}
_HEADLINES = ("retention", "revenue", "profit", "cost_to_serve", "clv")
_AS_WRITTEN = "as kamsim run --out or kamsim runs export writes it"


def _read_parquet(path: Path, problems: list[Problem]) -> Any:
    """The table at ``path``, or None with a problem said when it is no Parquet file or
    lacks a column the report reads."""
    import duckdb

    con = duckdb.connect()
    try:
        df = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).df()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0].split(": ", 1)[-1]
        problems.append(Problem(Location(str(path)), f"cannot be read as a Parquet table "
                                f"({reason})", f"the {path.stem} table {_AS_WRITTEN}"))
        return None
    finally:
        con.close()
    import pandas as pd

    missing = [c for c in _FOLDER_COLUMNS[path.stem] if c not in df.columns]
    if missing:
        problems.append(Problem(Location(str(path)), f"has no column {', '.join(missing)}",
                                f"the {path.stem} table {_AS_WRITTEN}"))
        return None
    wrong = [c for c in _FOLDER_COLUMNS[path.stem]
             if c not in _TEXT_COLUMNS and not (pd.api.types.is_numeric_dtype(df[c])
                                                or pd.api.types.is_bool_dtype(df[c]))]
    if wrong:
        problems.append(Problem(Location(str(path)),
                                f"column {', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'}"
                                " not numbers", f"the {path.stem} table {_AS_WRITTEN}"))
        return None
    # a name column of numbers drew nothing for its names, or failed where the charts
    # look the names up
    unnamed = [c for c in _FOLDER_COLUMNS[path.stem]
               if c in _TEXT_COLUMNS and not (pd.api.types.is_string_dtype(df[c])
                                              or pd.api.types.is_object_dtype(df[c]))]
    if unnamed:
        problems.append(Problem(Location(str(path)),
                                f"column {', '.join(unnamed)} "
                                f"{'is' if len(unnamed) == 1 else 'are'} not text",
                                f"names: the {path.stem} table {_AS_WRITTEN}"))
        return None
    return df


#: the tables a run always has rows in (a run may lose no account, so churn may be empty)
_NOT_EMPTY = ("timeseries", "accounts", "utilisation")


def _check_fit(frames: dict[str, Any], folder: Path, problems: list[Problem],
               stages: Sequence[str] = ()) -> None:
    """Problems of tables that are each well formed but not of one run (a table copied in
    from another run's folder): the charts index one by the other, and failed on them with
    an IndexError, or warned of empty means. Each is told at the table that does not fit
    the timeseries (the run's periods and tiers) or the resolved scenario's ``stages``
    (the stage charts draw those: stages of another ladder were drawn empty, unsaid)."""
    def bad(table: str, what: str, expected: str) -> None:
        problems.append(Problem(Location(str(folder / f"{table}.parquet")), what,
                                f"{expected}: the {table} table {_AS_WRITTEN}"))

    # (a flow from "new" is an arrival, one to "lost" a lost account: results.py)
    for table, columns in (("stage_mix", {"stage": ()}),
                           ("stage_flows", {"from_stage": ("new",), "to_stage": ("lost",)})):
        df = frames.get(table)
        if not stages or df is None:
            continue
        strangers = [v for c, more in columns.items() for v in dict.fromkeys(df[c])
                     if v not in stages and v not in more]
        strangers = list(dict.fromkeys(strangers))
        if strangers:
            bad(table, f"stage {', '.join(map(repr, strangers[:5]))} "
                f"{'is' if len(strangers) == 1 else 'are'} none of the resolved scenario's "
                "stages", f"one of {', '.join(stages)}")

    for t in _NOT_EMPTY:
        if t in frames and frames[t] is not None and not len(frames[t]):
            bad(t, "no rows", "a row for every replication")
    ts, acc = frames.get("timeseries"), frames.get("accounts")
    if ts is None or not len(ts) or acc is None or not len(acc):
        return
    periods = int(ts["period"].max()) + 1
    months = ts.groupby("period")["month"].first()
    dt = float(months.iloc[1] - months.iloc[0]) if len(months) > 1 else 1.0
    unit = "months" if dt == 1.0 else "periods"
    last = int(acc["churn_period"].max())
    if last >= periods:
        bad("accounts", f"churn_period {last} beyond the horizon of {periods} {unit}",
            f"a period of the timeseries (0 to {periods - 1}), or -1 for never")
    tiers = list(dict.fromkeys(ts["tier"]))
    strangers = [t for t in dict.fromkeys(acc["initial_tier"]) if t not in tiers]
    if strangers:
        bad("accounts", f"initial_tier {', '.join(map(repr, strangers[:5]))} "
            f"{'is' if len(strangers) == 1 else 'are'} none of the timeseries' tiers",
            f"one of {', '.join(tiers)}")


def _read_json(path: Path, problems: list[Problem]) -> Any:
    """The JSON in ``path`` (None with a located problem when it is not JSON)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problems.append(Problem(Location(str(path), exc.lineno, exc.colno),
                                f"not JSON: {exc.msg}", f"{path.name} {_AS_WRITTEN}"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        problems.append(Problem(Location(str(path)), f"cannot be read ({reason})",
                                f"{path.name} {_AS_WRITTEN}"))
    return None


#: a field that is not there (None is JSON's null)
_MISSING: Any = object()


def _check_summary(summary: Any, path: Path, problems: list[Problem]) -> None:
    """Problems with the fields of ``summary.json`` the report reads, each named by its
    dotted path. Unknown fields (a newer kamsim's) are left alone; the optional ones an
    older kamsim did not write (currency, confidence, horizon) take the defaults the
    report gives them."""
    loc = Location(str(path))

    def bad(field: str, value: Any, expected: str) -> None:
        said = "missing" if value is _MISSING else f"is {json.dumps(value)[:60]}"
        problems.append(Problem(loc, f"{field} {said}", expected))

    if not isinstance(summary, dict):
        bad("the summary", summary, "a JSON object with the run's figures")
        return

    def stat(field: str, value: Any) -> None:
        if not isinstance(value, dict):
            bad(field, value, "an object with mean, ci_low, ci_high and n")
            return
        for k in ("mean", "ci_low", "ci_high"):
            v = value.get(k, _MISSING)
            if v is not None and not is_number(v):
                bad(f"{field}.{k}", v, "a number, or null where there is no value")
        if "n" in value and not is_number(value["n"]):
            bad(f"{field}.n", value["n"], "a whole number of replications")

    if not isinstance(summary.get("scenario", _MISSING), str):
        bad("scenario", summary.get("scenario", _MISSING), "the scenario's name as text")
    for k in ("seed", "replications"):
        v = summary.get(k, _MISSING)
        if not isinstance(v, int) or isinstance(v, bool) or (k == "replications" and v < 1):
            bad(k, v, "a whole number" + (" of at least 1" if k == "replications" else ""))
    conf = summary.get("confidence", 0.95)
    if not is_number(conf) or not 0 < conf < 1:
        bad("confidence", conf, "a number between 0 and 1, as 0.95")
    if not is_number(summary.get("horizon_months", 0)):
        bad("horizon_months", summary["horizon_months"], "a number of months")
    if not isinstance(summary.get("currency", "EUR"), str):
        bad("currency", summary["currency"], "a currency code as text, as EUR")
    for name in _HEADLINES:
        stat(name, summary.get(name, _MISSING))
    by_tier = summary.get("by_tier", _MISSING)
    if not isinstance(by_tier, dict) or not by_tier:
        bad("by_tier", by_tier, "an object with each tier's figures")
        return
    for tier, figures in by_tier.items():
        if not isinstance(figures, dict):
            bad(f"by_tier.{tier}", figures, "an object with the tier's figures")
            continue
        for name in _HEADLINES:
            stat(f"by_tier.{tier}.{name}", figures.get(name, _MISSING))



#: the parts of ``scenario.resolved.json`` the report reads into, the type each must be,
#: and what that is
_RESOLVED_SHAPES: tuple[tuple[tuple[str, ...], type, str], ...] = (
    (("rule_hashes",), dict, "an object: each rule and data file's hash by its path"),
    (("rules", "stages"), dict, "an object: the stage rules, with their stages"),
    (("rules", "stages", "uncoupled"), dict, "an object: the broken-down stage, with its name"),
    (("scenario", "strategy"), dict, "an object: the strategy, with its name"),
    (("scenario", "capacity"), dict, "an object: the team's capacity"),
    (("scenario", "capacity", "support"), dict, "an object: the support team's capacity"),
    (("scenario", "portfolio"), dict, "an object: how the portfolio is generated or imported"),
    (("scenario", "portfolio", "import"), dict, "an object: the portfolio file's path"),
    (("scenario", "shocks"), list, "a list of shocks"),
)


def _check_resolved(resolved: Any, path: Path, problems: list[Problem]) -> None:
    """Problems with the parts of ``scenario.resolved.json`` the report reads."""
    loc = Location(str(path))
    if not isinstance(resolved, dict):
        problems.append(Problem(loc, f"is {type(resolved).__name__} JSON, not an object",
                                f"the resolved scenario {_AS_WRITTEN}"))
        return
    for part in ("scenario", "rules"):
        if not isinstance(resolved.get(part, {}), dict):
            problems.append(Problem(loc, f"{part} is not an object",
                                    f"the resolved scenario {_AS_WRITTEN}"))

    def at(*keys: str) -> Any:
        node: Any = resolved
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        return node

    # what stage_order and the inputs table read: each an object (a list) where it is
    # there at all (null or absent takes the default); the figures in them are shown as
    # written
    for keys, kind, expected in _RESOLVED_SHAPES:
        value = at(*keys)
        if value is not None and not isinstance(value, kind):
            problems.append(Problem(loc, f"{'.'.join(keys)} is {json.dumps(value)[:60]}",
                                    expected))
    ladder = at("rules", "stages", "stages")
    if ladder is not None and not (isinstance(ladder, list) and all(
            isinstance(s, str) or (isinstance(s, dict) and isinstance(s.get("name"), str))
            for s in ladder)):
        problems.append(Problem(loc, "rules.stages.stages is not a list of named stages",
                                "the stage ladder's stages, bottom to top"))


def from_folder(folder: str | Path) -> ReportRun:
    """A results folder written by ``kamsim run --out`` or ``kamsim runs export`` (Parquet,
    summary.json and scenario.resolved.json), read and checked in one place: whatever in it
    the report cannot use (a file missing, not JSON, not Parquet, a field of the wrong type,
    a table without a column the charts read, tables that do not fit together) is an
    InputError with one located problem
    each, all at once, before anything is drawn or written. A folder that is none of
    kamsim's, or a CSV export, is a RunError."""
    folder = Path(folder)
    need = [folder / "summary.json", folder / "scenario.resolved.json",
            *(folder / f"{t}.parquet" for t in _FOLDER_TABLES)]
    missing = [p for p in need if not p.is_file()]
    tables_missing = [p for p in missing if p.suffix == ".parquet"]
    if (len(tables_missing) == len(_FOLDER_TABLES)
            and all((folder / f"{t}.csv").is_file() for t in _FOLDER_TABLES)):
        # a `runs export --format csv` folder (no Parquet at all): kamsim wrote it, so say
        # what it lacks and how to get what reports read, rather than that it is no
        # results folder
        rid = _exported_run_id(folder) or "RUN_ID"
        raise RunError(f"{folder}: a CSV export; reports read the Parquet tables (report on "
                       f"the stored run: kamsim report {rid}, or export it as Parquet: kamsim "
                       f"runs export {rid} --out FOLDER)")
    if len(missing) == len(need):
        raise RunError(f"{folder}: not a kamsim results folder (missing "
                       f"{', '.join(p.name for p in missing)})")
    problems = [Problem(Location(str(p)), "missing", f"{p.name} {_AS_WRITTEN}")
                for p in missing]
    summary = resolved = None
    if folder / "summary.json" not in missing:
        summary = _read_json(folder / "summary.json", problems)
        if summary is not None:
            _check_summary(summary, folder / "summary.json", problems)
    if folder / "scenario.resolved.json" not in missing:
        resolved = _read_json(folder / "scenario.resolved.json", problems)
        if resolved is not None:
            before = len(problems)
            _check_resolved(resolved, folder / "scenario.resolved.json", problems)
            if len(problems) > before:  # (its stages cannot be read)
                resolved = None
    frames = {t: _read_parquet(folder / f"{t}.parquet", problems) for t in _FOLDER_TABLES
              if folder / f"{t}.parquet" not in missing}
    _check_fit(frames, folder, problems,
               _resolved_stages(resolved) if isinstance(resolved, dict) else ())
    if problems:
        raise InputError(problems)
    assert isinstance(summary, dict) and isinstance(resolved, dict)
    return ReportRun(name=summary["scenario"], summary=summary, resolved=resolved,
                     frames=frames, origin=f"folder {folder}")


def _exported_run_id(folder: Path) -> str | None:
    """The run id in the ``run.json`` of a ``kamsim runs export`` folder, if it has one."""
    try:
        rid = json.loads((folder / "run.json").read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return rid if isinstance(rid, str) else None


def load_runs(refs: Sequence[str], store: str | Path | None = None) -> list[ReportRun]:
    """Each ref is a results folder, a run id (or unique prefix) or a group id (all the
    runs of one comparison, oldest first). Unknown refs raise a RunError naming them; with
    a folder's problems, or other unknown refs, an InputError with every one of them, each
    at its folder's file or its ref (one ref's error hid the problems of the others)."""
    runs: list[ReportRun] = []
    problems: list[Problem] = []  # of every folder, told together
    unknown: list[tuple[str, RunError]] = []  # refs neither a folder nor a stored run
    st = None
    try:
        for ref in refs:
            if Path(ref).is_dir():
                try:
                    runs.append(from_folder(ref))
                except InputError as exc:
                    problems.extend(exc.problems)
                continue
            try:
                if st is None:
                    from kamsim import store as store_mod

                    path = (Path(store) if store is not None
                            else store_mod.default_store_path())
                    if not path.exists():
                        raise RunError(f"not a results folder, and there is no run store "
                                       f"at {path} to look it up in")
                    st = store_mod.open(path, read_only=True)
                runs.extend(from_record(r) for r in st.get_many(ref))
            except RunError as exc:
                unknown.append((ref, exc))
    finally:
        if st is not None:
            st.close()
    if len(unknown) == 1 and not problems:
        given, err = unknown[0]
        raise RunError(f"{given}: {err}" if str(err).startswith("not a results folder")
                       else str(err))
    if problems or unknown:
        raise InputError([*problems, *(Problem(Location(given), str(err))
                                       for given, err in unknown)])
    return runs
