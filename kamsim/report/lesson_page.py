"""An interactive lesson page: one self-contained, offline HTML file.

The page holds its data as JSON in a ``<script type="application/json">`` tag and draws
everything with inline vanilla JS and SVG (no external scripts, fonts or requests): a month
slider with step buttons; the focus account's decision unit (people by seniority, colour =
attitude, border = coverage, influence edges); trust and stage over time with the current
month marked; the main variant's portfolio stage mix and flows that month (up, down,
uncoupled, lost, new); and the narrated story up to that month.

The slider's leftmost position (-1) is the start of the run, before month 0's events: the
account as ``kamsim dmu show`` shows it without ``--month`` and as the story's opening tells
it, so that a class sees it before anything happened. Position M is the end of month M
(what ``kamsim dmu show --month M`` shows): month 0 is already a month played.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["lesson_page_data", "render_lesson_page", "write_lesson_page"]

_TEMPLATE = "lesson_page.html.j2"


def _flows(result: Any, uncoupled_name: str) -> dict[str, Any]:
    """Mean (over replications) stage mix at each period's start and the moves during it."""
    stages = list(result.stages)
    ns = len(stages)
    trans = np.mean([o.transitions.sum(axis=1) for o in result.outputs], axis=0)
    mix = np.mean([o.stage_counts.sum(axis=1) for o in result.outputs], axis=0)
    unc = stages.index(uncoupled_name)
    idx = np.arange(ns)
    frm, to = np.meshgrid(idx, idx, indexing="ij")
    ladder = (frm != unc) & (to != unc)
    up = (trans[:, :ns, :ns] * (ladder & (to > frm))).sum(axis=(1, 2))
    down = (trans[:, :ns, :ns] * (ladder & (to < frm))).sum(axis=(1, 2))
    uncoupled = trans[:, :ns, unc].sum(axis=1) - trans[:, unc, unc]
    recovered = trans[:, unc, :ns].sum(axis=1) - trans[:, unc, unc]
    lost = trans[:, :ns, ns].sum(axis=1)
    new = trans[:, ns, :ns].sum(axis=1)

    def r(x: np.ndarray) -> list[float]:
        return [round(float(v), 2) for v in x]

    return {"stages": stages, "mix": [r(row) for row in mix], "up": r(up), "down": r(down),
            "uncoupled": r(uncoupled), "recovered": r(recovered), "lost": r(lost),
            "new": r(new)}


def lesson_page_data(run: Any) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data, from a
    :class:`kamsim.lessons.LessonRun`."""
    from kamsim.dmu_maps import START
    from kamsim.lessons import format_value

    les = run.lesson
    t = run.trace
    main = run.results[les.main]
    spec = les.specs()[les.main]  # (as the run loaded it: not read again)
    seniority = {name: r.seniority for name, r in spec.stakeholders.roles.items()}

    def people(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": p["id"], "role": p["role"], "influence": round(p["influence"], 3),
                 "attitude": round(p["attitude"], 3), "coverage": round(p["coverage"], 3),
                 "seniority": seniority.get(p["role"], 1)} for p in rows]

    begin = t.start()
    start = {
        "stage": begin["stage"], "tier": begin["tier"], "trust": round(begin["trust"], 4),
        "coverage": round(begin["coverage"], 4), "people": people(begin["people"]),
        # the posts and their influence edges never change during a run (structural fields,
        # kamsim.engine.core.SHARED_UNIT_FIELDS; a newcomer takes the post's id): the first
        # month's edges are the start's
        "edges": [[s, d, round(w, 3), sg] for s, d, w, sg in t.records[0]["edges"]],
        "when": START, "opening": t.opening(),
    }
    months = [{
        "period": rec["period"], "month": rec["month"], "stage": rec["stage"],
        "trust": round(rec["trust"], 4), "coverage": round(rec["coverage"], 4),
        "service_ratio": round(rec["service_ratio"], 3), "churned": rec["churned"],
        "people": people(rec["people"]),
        "edges": [[s, d, round(w, 3), sg] for s, d, w, sg in rec["edges"]],
    } for rec in t.records]
    table = []
    for fig, per in run.table().items():
        table.append({"figure": les.figure(fig).label or fig,
                      "values": {v: format_value(run, fig, s["mean"]) for v, s in per.items()}})
    periods = main.outputs[0].periods
    return {
        "title": les.title, "question": " ".join(les.question.split()),
        "answer": " ".join(les.answer.split()), "holds": run.holds,
        "checks": run.sentences(), "variants": list(les.variants), "main": les.main,
        "table": table, "account": t.account, "scenario": t.scenario, "seed": run.seed,
        "replications": run.replications, "dt": t.dt, "periods": periods,
        "ladder": list(t.stages), "uncoupled": t.uncoupled, "start": start, "months": months,
        "story": [{"period": m.period, "month": m.month, "sentence": m.sentence}
                  for m in t.timeline()],
        "flows": _flows(main, t.uncoupled),
    }


def render_lesson_page(run: Any) -> str:
    """The page's HTML text."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]), keep_trailing_newline=True)
    data = lesson_page_data(run)
    # "</script>" or "<!--" inside the data block would end or confuse it: escape < > & as
    # JSON unicode escapes, which JSON.parse reads back unchanged
    blob = (json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return env.get_template(_TEMPLATE).render(data=data, data_json=blob)


def write_lesson_page(run: Any, out: Path) -> Path:
    """Write the page to ``out`` atomically (temp file + rename) and return ``out``."""
    from kamsim.io import atomic_write_text, require_folder

    out = Path(out)
    require_folder(out)
    atomic_write_text(out, render_lesson_page(run))  # a page to share: mode by the umask
    return out
