"""Live watching: does a dashboard reading a run slow its writer down, and how fast do new steps show?

1. The writer under readers. A run log is written as fast as it goes (200-parameter steps, grad_norm and
   update_ratio as the Probe writes them by default) three ways, interleaved in rounds: nobody reading; two
   readers following it as the dashboard does (every 0.5 s, only the rows after the last step seen:
   app.data.extend_run); two readers loading the whole run over and over (app.data.load_run, the worst a
   reader can do). Each write_step is timed: median, 99th percentile and the longest, in ms. Every step is
   counted back at the end. The loop's only wait is its own write (there is no queue to grow).
2. Step to screen, in a real browser, on a run that already holds --steps steps x 200 parameters and grows
   by --rate steps/s: the delay from each step's write to the page's step counter showing it (median and
   max), and how often the page's charts are redrawn with the new steps (the Gradients page, following).

    python benchmarks/live.py [--rounds 3] [--write-steps 2000] [--steps 10000] [--rate 10] [--seconds 20]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dashboard import start_server, synthetic_run  # noqa: E402

NAMES = [f"blocks.{i}.fc.{k}" for i in range(100) for k in ("weight", "bias")]


def _reader(path: str, mode: str, stop) -> None:
    from app.data import extend_run, load_run
    view = None
    while not stop.is_set():
        try:
            if mode == "follow":
                view = load_run(path) if view is None else extend_run(view)
                stop.wait(0.5)
            else:
                load_run(path)
        except Exception:       # noqa: BLE001 - the log may not exist for the first moments
            time.sleep(0.05)


def write_run(path: Path, steps: int, readers: str | None) -> dict:
    from probes.runlog import RunReader, RunWriter
    writer = RunWriter(path / "run.db")
    writer.set_meta(model="Net", device="cpu", started=time.time(), status="running")
    rng = np.random.default_rng(0)
    writer.write_step(0, {"loss": 1.0})
    stop = mp.Event()
    procs = [mp.Process(target=_reader, args=(str(path), readers, stop), daemon=True)
             for _ in range(2 if readers else 0)]
    for p in procs:
        p.start()
    time.sleep(1.0 if procs else 0)         # readers attached before the timed writes
    times = []
    for step in range(1, steps + 1):
        g = rng.uniform(0.01, 1.0, len(NAMES)).tolist()
        t = time.perf_counter()
        writer.write_step(step, {"loss": 1.0 / step, "step_time_s": 0.01, "data_wait_s": 0.001,
                                 "mem.rss_bytes": 4e8}, {"grad_norm": (NAMES, g), "update_ratio": (NAMES, g)})
        times.append(time.perf_counter() - t)
    stop.set()
    for p in procs:
        p.join(timeout=30)
    writer.set_meta(status="finished")
    writer.close()
    with RunReader(path) as reader:
        counted = reader.step_count()
    ms = np.array(times) * 1000
    return {"median": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "max": float(ms.max()),
            "rate": steps / float(np.sum(times)), "counted": counted, "expected": steps + 1}


LIVE_WRITER = r'''
import sys, time, json
import numpy as np
from probes.runlog import RunWriter
path, start, rate, seconds, stamps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
names = [f"blocks.{i}.fc.{k}" for i in range(100) for k in ("weight", "bias")]
w = RunWriter(path + "/run.db")
w.set_meta(status="running")
rng = np.random.default_rng(1)
out = open(stamps, "w")
t0 = time.time()
step = start
while time.time() - t0 < seconds:
    g = rng.uniform(0.01, 1.0, len(names)).tolist()
    w.write_step(step, {"loss": 1.0, "step_time_s": 1 / rate, "data_wait_s": 0.0, "mem.rss_bytes": 4e8},
                 {"grad_norm": (names, g), "update_ratio": (names, g)})
    out.write(json.dumps([step + 1, time.time()]) + "\n"); out.flush()
    step += 1
    time.sleep(max(0.0, t0 + (step - start) / rate - time.time()))
w.set_meta(status="finished")
w.close()
'''


def step_to_screen(args) -> dict:
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = synthetic_run(root, args.steps, 200)
        from probes.runlog import RunWriter
        w = RunWriter(run / "run.db")
        w.set_meta(status="running")        # the recorded run goes on being written
        w.close()
        proc, url, _ = start_server(root)
        stamps = root / "stamps.jsonl"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(f"{url}/gradients?run={run.name}")
                page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
                writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(run), str(args.steps),
                                           str(args.rate), str(args.seconds), str(stamps)], cwd=ROOT)
                seen: dict[int, float] = {}
                redraws: list[float] = []
                last_x = None
                while writer.poll() is None:
                    m = re.search(r"· ([\d,]+) steps? on", page.inner_text("main"))
                    if m:
                        seen.setdefault(int(m[1].replace(",", "")), time.time())
                    # the heatmap's x axis ends at the last step drawn: it moves when the chart is redrawn
                    x = page.evaluate("() => { const d = document.querySelector('.js-plotly-plot');"
                                      " return d && d._fullLayout ? d._fullLayout.xaxis.range[1] : null }")
                    if x is not None and x != last_x:
                        redraws.append(time.time())
                        last_x = x
                    time.sleep(0.05)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        written = {k: t for k, t in (json.loads(line) for line in stamps.read_text().splitlines())}
    delays = sorted(seen[c] - written[c] for c in seen if c in written)
    gaps = np.diff(redraws) if len(redraws) > 1 else np.array([np.nan])
    return {"delays": delays, "written": len(written), "seen": len(delays),
            "redraw_median": float(np.median(gaps)), "redraws": len(redraws)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write-steps", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=10_000, help="steps already in the run watched live")
    ap.add_argument("--rate", type=float, default=10.0, help="steps/s written while it is watched")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.write_steps, args.steps, args.seconds = 1, 300, 1000, 6
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in (None, "follow", "load"):
                path = Path(tmp) / f"{mode}-{r}"
                path.mkdir()
                results.setdefault(str(mode), []).append(write_run(path, args.write_steps, mode))
    print(f"1. write_step of a 200-parameter step, {args.write_steps:,} steps x {args.rounds} rounds "
          f"(ms; median over rounds)")
    print(f"{'readers':<34}{'median':>8}{'p99':>8}{'max':>8}{'steps/s':>9}  every step read back")
    labels = {"None": "none", "follow": "2 following (extend every 0.5 s)", "load": "2 reloading the whole run"}
    for mode, rows in results.items():
        med = {k: float(np.median([row[k] for row in rows])) for k in ("median", "p99", "max", "rate")}
        ok = all(row["counted"] == row["expected"] for row in rows)
        print(f"{labels[mode]:<34}{med['median']:>8.2f}{med['p99']:>8.2f}{med['max']:>8.2f}{med['rate']:>9,.0f}  "
              f"{'yes' if ok else 'NO'}")
    live = step_to_screen(args)
    d = live["delays"]
    print(f"\n2. step to screen: a {args.steps:,}-step x 200-parameter run growing at {args.rate:g} steps/s for "
          f"{args.seconds:g} s, Gradients page following")
    if d:
        print(f"   step counter: median {d[len(d) // 2]:.2f} s, max {d[-1]:.2f} s after the write (budget 2 s; "
              f"{live['seen']} counter values seen for {live['written']} steps: it moves twice a second)")
    print(f"   charts redrawn {live['redraws']} times, median every {live['redraw_median']:.2f} s")
    import streamlit
    print(f"\n{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"streamlit {streamlit.__version__}")


if __name__ == "__main__":
    main()
