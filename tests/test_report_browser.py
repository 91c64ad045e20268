"""The report in a real browser (headless Chromium through Playwright): it renders every
chart, logs no errors and makes no network request at all.

Chromium is required, not optional: the README's test command installs it
(``apt-get install -y chromium``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kamsim.report.charts import CHARTS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: the browser test needs Debian's chromium; the "
                    "README's test command installs it (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    from kamsim.experiment import simulate
    from kamsim.report.html import write_report
    from kamsim.spec.load import load_scenario

    o = ["portfolio.generate.accounts=200", "horizon_months=24", "replications=3"]
    results = [simulate(load_scenario(REPO / "scenarios" / f"{n}.yaml", o), workers=1)
               for n in ("equal_treatment", "tiered")]
    report = write_report(results, tmp_path / "report.html")
    url = report.resolve().as_uri()

    errors: list[str] = []
    requests: list[str] = []
    shots = REPO / "test-artifacts"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            boxes = {}
            for name in CHARTS:
                loc = page.locator(f'svg[data-chart="{name}"]')
                assert loc.count() == 1, f"chart {name}: {loc.count()} elements"
                boxes[name] = loc.bounding_box()
            assert page.locator("#verdict p").count() == 1
            # nothing wider than the window: a board reads it without scrolling sideways
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(shots / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [url], f"requests other than the file itself: {requests}"
    for name, box in boxes.items():
        assert box and box["width"] > 100 and box["height"] > 100, (name, box)
