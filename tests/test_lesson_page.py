"""The interactive lesson page, in a real headless Chromium (Playwright), offline: the page
must load no other URL than its own file, log no console errors, and respond to the month
controls. Chromium missing is a failure, not a skip. A screenshot goes to
test-artifacts/lesson.png."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from kamsim.lessons import run_lesson
from kamsim.report.lesson_page import render_lesson_page, write_lesson_page

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "scenarios" / "lessons"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = run_lesson("champion_leaves", replications=3, workers=1, folder=LESSONS)
    return write_lesson_page(run, tmp_path_factory.mktemp("page") / "lesson.html")


def test_page_is_self_contained(page_file: Path) -> None:
    html = page_file.read_text(encoding="utf-8")
    for ident in ("month-label", "step-forward", "step-back", "month-slider", "dmu-map",
                  "trust-chart", "stage-flow", "narrative"):
        assert f'id="{ident}"' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "url(http" not in html
    blob = re.search(r'<script type="application/json" id="lesson-data">(.*?)</script>',
                     html, re.S)
    assert blob is not None
    data = json.loads(blob.group(1))
    assert data["account"] == "A004" and data["months"] and data["story"]
    assert len(data["flows"]["up"]) == data["periods"]


def test_page_escapes_script_end(page_file: Path) -> None:
    """A sentence holding "</script>" must not end the data block early."""
    run = run_lesson("champion_leaves", replications=2, workers=1, folder=LESSONS)
    run.lesson.__dict__["answer"] = "beware </script><script>alert(1)</script>"
    html = render_lesson_page(run)
    assert html.count("<script") == 2


def test_slider_month_is_dmu_show_month(page_file: Path) -> None:
    """Slider position M shows what `kamsim dmu show --month M` shows: the end of month M."""
    from kamsim.dmu_maps import account_map
    from kamsim.report.lesson_page import lesson_page_data
    from kamsim.spec.load import load_scenario

    run = run_lesson("champion_leaves", replications=2, workers=1, folder=LESSONS)
    les = run.lesson
    data = lesson_page_data(run)
    spec = load_scenario(les.scenario_path(),
                         list(les.variants[les.main]) + [f"seed={run.seed}"])
    by_period = {m["period"]: m for m in data["months"]}
    for month in (0, 1, 5, 10, 30):
        if month not in by_period:
            continue  # lost before: the page shows the last month, as dmu show's note says
        amap = account_map(spec, data["account"], month=month)
        assert amap.when == f"end of month {month}"
        shown = [(p["id"], p["coverage"], p["attitude"]) for p in by_period[month]["people"]]
        assert shown == [(p["id"], round(p["coverage"], 3), round(p["attitude"], 3))
                         for p in amap.description["people"]], month


def test_slider_starts_at_the_start_of_the_run(page_file: Path) -> None:
    """The leftmost slider position, where the page opens, is the account before anything
    happened: what `kamsim dmu show` shows without --month (the same people, coverage and
    attitudes, and the same words for when) and what the story's opening tells (tier, stage,
    trust), without month 0's events."""
    from kamsim.dmu_maps import account_map
    from kamsim.report.lesson_page import lesson_page_data
    from kamsim.spec.load import load_scenario

    run = run_lesson("champion_leaves", replications=2, workers=1, folder=LESSONS)
    les = run.lesson
    data = lesson_page_data(run)
    start = data["start"]
    spec = load_scenario(les.scenario_path(),
                         list(les.variants[les.main]) + [f"seed={run.seed}"])
    amap = account_map(spec, data["account"])
    assert start["when"] == amap.when == "start of the run (before month 0)"
    assert [(p["id"], p["coverage"], p["attitude"], p["influence"]) for p in start["people"]] == [
        (p["id"], round(p["coverage"], 3), round(p["attitude"], 3), round(p["influence"], 3))
        for p in amap.description["people"]]
    assert start["tier"] == amap.tier
    opening = run.trace.sentences()[0]
    assert opening.startswith("month 0: " + start["opening"])
    assert f"at the {start['stage']} stage, trust {start['trust']:.2f}" in start["opening"]
    # here the champion leaves in month 0: the start is not the end of month 0
    assert [p["attitude"] for p in start["people"]] != [
        p["attitude"] for p in data["months"][0]["people"]]
    html = page_file.read_text(encoding="utf-8")
    assert '<span id="month-label">start of the run (before month 0)</span>' in html
    assert 'min="-1"' in html and 'value="-1"' in html


@pytest.mark.slow
def test_page_in_headless_chromium(page_file: Path) -> None:
    assert Path(CHROMIUM).exists() or shutil.which("chromium"), (
        f"Chromium not found at {CHROMIUM}: install the Debian package `chromium` to run "
        "the browser test")
    from playwright.sync_api import sync_playwright

    blob = re.search(r'<script type="application/json" id="lesson-data">(.*?)</script>',
                     page_file.read_text(encoding="utf-8"), re.S)
    assert blob is not None
    start_people = json.loads(blob.group(1))["start"]["people"]  # (dmu show's, checked above)
    url = page_file.resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            page.wait_for_selector("#dmu-map circle")

            def titles() -> list[str]:
                return page.eval_on_selector_all("#dmu-map circle title",
                                                 "els => els.map(e => e.textContent)")

            # the page opens at the start of the run, the leftmost position
            assert page.inner_text("#month-label").startswith(
                "start of the run (before month 0) — ")
            assert page.eval_on_selector("#month-slider", "e => e.value") == "-1"
            assert "starts as" in page.inner_text("#narrative")
            assert "month 0:" not in page.inner_text("#narrative")
            start_map = titles()
            # each circle's tooltip: "id: attitude a, coverage c, influence i" (2 decimals)
            shown = [re.fullmatch(r"(\S+): attitude (\S+), coverage (\S+), influence (\S+)", t)
                     for t in start_map]
            assert [m.group(1) for m in shown if m] == [p["id"] for p in start_people]
            for m, p in zip(shown, start_people, strict=True):
                assert m is not None
                for i, key in ((2, "attitude"), (3, "coverage"), (4, "influence")):
                    assert abs(float(m.group(i)) - p[key]) <= 0.0051, (p["id"], key)
            page.click("#step-back")  # nothing before the start
            assert page.eval_on_selector("#month-slider", "e => e.value") == "-1"
            page.click("#step-forward")
            label0 = page.inner_text("#month-label")
            map0 = page.inner_html("#dmu-map")
            story0 = page.inner_text("#narrative")
            assert label0.startswith("end of month 0")
            assert titles() != start_map
            page.click("#step-back")
            assert titles() == start_map
            page.click("#step-forward")
            for _ in range(10):
                page.click("#step-forward")
            label1 = page.inner_text("#month-label")
            map1 = page.inner_html("#dmu-map")
            assert label1 != label0 and label1.startswith("end of month 10")
            assert map1 != map0
            assert page.inner_text("#narrative") != story0
            assert page.eval_on_selector("#month-slider", "e => e.value") == "10"
            page.click("#step-back")
            assert page.inner_text("#month-label").startswith("end of month 9")
            assert page.locator("#trust-chart polyline").count() == 2
            assert page.locator("#stage-flow rect").count() >= 5
            page.eval_on_selector("#month-slider",
                                  "e => { e.value = 30; e.dispatchEvent(new Event('input')); }")
            assert page.inner_text("#month-label").startswith("end of month 30")
            page.eval_on_selector("#month-slider",
                                  "e => { e.value = 10; e.dispatchEvent(new Event('input')); }")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "lesson.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [], errors
    assert set(requests) <= {url}, requests


def test_page_says_when_a_check_cannot_be_told() -> None:
    """A check left with one replication that had the figure has no interval: the page says
    the model cannot tell, instead of "nan" and "does not show"."""
    import dataclasses

    import numpy as np

    from kamsim.lessons import CheckResult
    from kamsim.report.lesson_page import lesson_page_data
    from kamsim.stats import mean_ci

    run = run_lesson("equal_vs_tiered", replications=2, workers=1, folder=LESSONS)
    one = CheckResult(check=run.lesson.checks[0], diff=mean_ci(np.array([0.326])), wins=1, n=1)
    run = dataclasses.replace(run, checks=[one])
    data = lesson_page_data(run)
    assert data["holds"] is None
    assert "cannot tell" in data["checks"][0] and "nan" not in data["checks"][0]
    html = render_lesson_page(run)
    assert "The model cannot tell all of this here:</b>" in html
    assert "The model does not show all of this here" not in html
    assert "The model agrees" not in html


@pytest.mark.slow
def test_month_label_says_lost_in_the_month_the_account_is_lost(page_file: Path) -> None:
    """The label said "end of month 21 — basic" while the map said "lost in month 21" (and
    the story "lost at the basic stage"): from the month the account is lost, the label says
    "lost"; before it, the stage."""
    from playwright.sync_api import sync_playwright

    html = page_file.read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="lesson-data">(.*?)</script>',
                     html, re.S)
    assert blob is not None
    months = json.loads(blob.group(1))["months"]
    (lost,) = [m for m in months if m["churned"]]  # champion_leaves' A004 is lost
    before = months[-2]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(page_file.resolve().as_uri())
            page.wait_for_selector("#dmu-map circle")

            def label(period: int) -> str:
                page.eval_on_selector("#month-slider", "(e, v) => { e.value = v; "
                                      "e.dispatchEvent(new Event('input')); }", str(period))
                return page.inner_text("#month-label")

            assert label(lost["period"]) == f"end of month {lost['period']} — lost"  # monthly
            assert label(lost["period"] + 1).endswith(" — lost")
            assert label(before["period"]) == (f"end of month {before['period']} — "
                                               f"{before['stage']}")
        finally:
            browser.close()
