"""Load: a run written at 1,000 steps/s while two dashboard sessions follow it live, and a 100,000-step run on
every page.

The first is the short version of the soak (benchmarks/soak.py, five minutes): the same real writer process
(tests/fixtures/loops/fast_writer.py), real dashboard server and two real browser pages, for 20 seconds. It
proves what the soak proves except staying power: every step is counted back once, both pages follow the run
while it is written and end on its last step with no error, and the dashboard stays under its memory ceiling.
FORGESCOPE_LOAD_SECONDS changes its length.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dashboard_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import soak  # noqa: E402

WRITER = soak.WRITER
CHROMIUM = soak.CHROMIUM
SECONDS = float(os.environ.get("FORGESCOPE_LOAD_SECONDS", "20"))
RATE = 1000

try:
    from playwright.sync_api import sync_playwright
except ImportError:             # pragma: no cover - reported as a skip below (a failure under CI=true)
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -r "
                                                        "requirements-dev.txt)"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM} (apt-get install chromium)"),
]


def test_two_sessions_follow_a_run_written_at_1000_steps_per_second(browser, tmp_path):
    figures = soak.follow(browser, tmp_path, SECONDS, RATE, look_every=2.0)
    (tmp_path / "load.json").write_text(json.dumps(figures, indent=1))
    print(f"\nload: {soak.summary(figures)}")
    assert figures["rate"] >= RATE * 0.99, figures           # the writer kept its 1,000 steps/s
    assert figures["counted"] == figures["written"] and figures["last_step"] == figures["written"] - 1
    assert figures["status"] == "finished"
    assert figures["rss_peak_mib"] * 2**20 < soak.MEMORY_CEILING, figures
    # both followed the run while it was written, not only at its end
    assert min(figures["counter_values"]) >= min(2, figures["looks"] // 2), figures


PAGES = {"": "Findings", "gradients": "Gradients", "weights": "Weights", "memory": "Memory", "data": "Data loading",
         "tree": "Registration tree", "runs": "Runs"}
# points per trace as plotly.js drew them (its decoded data: the figure JSON carries binary arrays)
LONGEST_TRACE = """() => Math.max(0, ...[...document.querySelectorAll('.js-plotly-plot')].flatMap(
    d => (d._fullData || []).map(t => Math.max(t.x ? t.x.length : 0, t.z && t.z[0] ? t.z[0].length : 0))))"""


def test_a_100000_step_run_opens_on_every_page_with_downsampled_charts(browser, tmp_path):
    """Every page of a 100,000-step run draws, each chart binned to at most 2,000 points per trace (the load
    times are measured by benchmarks/dashboard.py --steps 100000, not asserted here)."""
    runs = tmp_path / "runs"
    written = subprocess.run([sys.executable, str(WRITER), str(runs), "600", "inf", "100000"], capture_output=True,
                             text=True, timeout=300)
    assert json.loads(written.stdout.splitlines()[-1])["written"] == 100_000, written.stderr
    server, url = dashboard_server.start(runs, tmp_path / "streamlit.log")
    longest = {}
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        for path, title in PAGES.items():
            page.goto(f"{url}/{path}?run=load")
            page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
            if path != "runs":
                page.get_by_text("100,000 steps on cpu").first.wait_for(timeout=60_000)
            if path in ("", "gradients", "weights", "memory", "data"):
                page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
                longest[title] = page.evaluate(LONGEST_TRACE)
            assert page.locator("[data-testid='stException']").count() == 0, page.inner_text("main")[:2000]
    finally:
        context.close()
        dashboard_server.stop(server)
    print(f"\n100,000-step run: longest trace per page {longest}")
    assert len(longest) == 5 and all(0 < n <= 2000 for n in longest.values()), longest
