"""Soak: a run written at 1,000 steps/s for five minutes while two dashboard sessions follow it live.

    .venv/bin/python benchmarks/soak.py [--seconds 300] [--rate 1000] [--json FILE]

A real writer process (tests/fixtures/loops/fast_writer.py: what a Probe writes at its default cadences for a
200-parameter model), a real dashboard server and two real chromium pages on the same run (Findings and
Gradients). Every step is counted back from the log at the end; both pages must end on the last step with no
error. Prints the dashboard's memory at start, peak and end, how far behind the writer the pages were, and
how many distinct step counts each page showed while the run was written (it followed the run, not only
its end). Goal: peak RSS under 1 GiB. The suite runs the same scenario for a few seconds
(tests/test_load.py); this is the long version.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import dashboard_server  # noqa: E402

WRITER = ROOT / "tests" / "fixtures" / "loops" / "fast_writer.py"
CHROMIUM = os.environ.get("FORGESCOPE_CHROMIUM", "/usr/bin/chromium")
MEMORY_CEILING = 1 << 30        # the dashboard holding a 300,000-step run, two sessions: well under 1 GiB
STEPS_SHOWN = re.compile(r"· ([\d,]+) steps? on cpu")


def shown_steps(page) -> int | None:
    found = STEPS_SHOWN.search(page.inner_text("main"))
    return int(found[1].replace(",", "")) if found else None


def follow(browser, work: Path, seconds: float, rate: float, look_every: float = 5.0) -> dict:
    """Write a run for `seconds` at `rate` steps/s while two pages follow it; returns what was measured.
    Raises AssertionError when a page shows an error, the writer fails or a page does not end on the last
    step."""
    from probes.runlog import RunReader
    runs = work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    server, url = dashboard_server.start(runs, work / "streamlit.log")
    writer, contexts = None, []
    samples = []        # (seconds since the writer started, dashboard RSS, steps on page 1, on page 2)
    try:
        writer = subprocess.Popen([sys.executable, str(WRITER), str(runs), str(seconds), str(rate)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        started = time.monotonic()
        pages = []
        for path in ("", "gradients"):
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            contexts.append(context)
            page = context.new_page()
            page.goto(f"{url}/{path}?run=load")
            page.get_by_text("LoadNet").first.wait_for(timeout=60_000)
            pages.append(page)
        baseline = dashboard_server.rss_bytes(server.pid)
        while writer.poll() is None:
            samples.append((time.monotonic() - started, dashboard_server.rss_bytes(server.pid),
                            *(shown_steps(page) for page in pages)))
            for page in pages:
                assert page.locator("[data-testid='stException']").count() == 0, page.inner_text("body")[:2000]
            time.sleep(look_every)
        outcome = json.loads(writer.stdout.read().strip().splitlines()[-1])
        assert writer.returncode == 0, writer.stderr.read()
        # both sessions end on the last step, with the run shown as finished
        deadline = time.monotonic() + 60
        while any(shown_steps(page) != outcome["written"] for page in pages) and time.monotonic() < deadline:
            time.sleep(0.5)
        for page in pages:
            assert shown_steps(page) == outcome["written"], page.inner_text("main")[:1000]
            page.get_by_text("finished").first.wait_for(timeout=30_000)
            assert page.locator("[data-testid='stException']").count() == 0
        final = dashboard_server.rss_bytes(server.pid)
    finally:
        for context in contexts:
            context.close()
        if writer is not None and writer.poll() is None:
            writer.kill()
        dashboard_server.stop(server)
    with RunReader(runs / "load") as reader:                  # every step written is in the log, once
        counted, meta = reader.step_count(), reader.meta()
        last = int(reader.scalars().index.max())
    # how far behind the writer each look found the pages (after the first tenth: the pages were opening)
    lags = [t * rate - min(s1 or 0, s2 or 0) for t, _, s1, s2 in samples if t > seconds / 10]
    followed = [len({s[i] for s in samples if s[i]}) for i in (2, 3)]
    peak = max([final] + [rss for _, rss, _, _ in samples])
    return {"seconds": outcome["seconds"], "written": outcome["written"], "counted": counted, "last_step": last,
            "status": meta["status"], "rate": outcome["rate"], "rss_start_mib": baseline / 2**20,
            "rss_peak_mib": peak / 2**20, "rss_end_mib": final / 2**20, "max_lag_steps": max(lags, default=0),
            "counter_values": followed, "looks": len(samples),
            "samples": [(round(t), round(rss / 2**20), s1, s2) for t, rss, s1, s2 in samples]}


def summary(figures: dict) -> str:
    return (f"{figures['written']:,} steps in {figures['seconds']:.0f} s ({figures['rate']:,.0f}/s), "
            f"{figures['counted']:,} counted back; dashboard RSS {figures['rss_start_mib']:.0f} MiB at start, peak "
            f"{figures['rss_peak_mib']:.0f} MiB, end {figures['rss_end_mib']:.0f} MiB; pages at most "
            f"{figures['max_lag_steps']:,.0f} steps behind, counters seen at {figures['counter_values']} values")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="forgescope-soak-") as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            figures = follow(browser, Path(tmp), args.seconds, args.rate)
        finally:
            browser.close()
    print(f"soak: {summary(figures)}")
    ok = (figures["counted"] == figures["written"] and figures["rss_peak_mib"] * 2**20 < MEMORY_CEILING
          and figures["rate"] >= args.rate * 0.99)
    print(f"goal (every step counted back, the writer kept its rate, peak RSS < 1 GiB): {'met' if ok else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
