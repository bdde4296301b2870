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


# -- 3. two sessions on a long run written at 1,000 steps/s ------------------------------------------------
# fast_writer.py's cadences (what a Probe writes at its defaults for a 200-parameter model): the run already
# holds --long-steps steps, written as fast as it goes; then it goes on at --long-rate steps/s
LONG_WRITER = r'''
import json, sys, time
import numpy as np
from probes.runlog import RunWriter
from probes.runs import Heartbeat
run, steps, rate, seconds, stamps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
names = [f"blocks.{i}.fc.{k}" for i in range(100) for k in ("weight", "bias")]
w = RunWriter(run + "/run.db")
beat = Heartbeat(run)
w.set_meta(model="LoadNet", device="cpu", status="running", started=time.time(),
           cadences={"grad_norm": "every 10 steps", "update_size": "every 20 steps"})
rng = np.random.default_rng(0)
def write(step):
    vectors = {}
    if step % 10 == 0:
        vectors["grad_norm"] = (names, rng.uniform(0.01, 1.0, len(names)))
    if step % 20 == 0:
        vectors["update_ratio"] = (names, rng.uniform(1e-4, 1e-2, len(names)))
    w.write_step(step, {"loss": 2.0 / (1 + step / 1000), "step_time_s": 1 / rate, "data_wait_s": 1e-5,
                        "mem.rss_bytes": 4e8}, vectors)
for step in range(steps):
    write(step)
print("ready", flush=True)
sys.stdin.readline()                    # go on once the pages are open
out = open(stamps, "w")
step, t0 = steps, time.monotonic()
while time.monotonic() - t0 < seconds:
    write(step)
    step += 1
    out.write(f"{step} {time.time()}\n")
    ahead = (step - steps) / rate - (time.monotonic() - t0)
    if ahead > 0:
        out.flush()
        time.sleep(ahead)
out.close()
w.set_meta(status="finished", ended=time.time())
beat.stop()
w.close()
print(json.dumps({"written": step, "rate": (step - steps) / (time.monotonic() - t0)}), flush=True)
'''


def _proc_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


COUNTER = re.compile(r"· ([\d,]+) steps? on")


def two_sessions(args, start=None) -> dict:
    """A run of --long-steps steps, then written on at --long-rate steps/s for --long-seconds while two
    sessions (Findings, Gradients) follow it; how far behind each page's step counter was (seconds since
    the step it shows was written), and the server's memory."""
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = root / "long"
        stamps = root / "stamps.txt"
        t = time.perf_counter()
        writer = subprocess.Popen([sys.executable, "-c", LONG_WRITER, str(run), str(args.long_steps),
                                   str(args.long_rate), str(args.long_seconds), str(stamps)], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        prewrite = time.perf_counter() - t
        proc, url, _ = (start or start_server)(root)
        looks: list[tuple[int, float, int]] = []        # (page, time, steps shown)
        rss = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                pages = []
                t = time.perf_counter()
                for path in ("", "gradients"):
                    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
                    page.goto(f"{url}/{path}?run=long")
                    page.get_by_text(f"{args.long_steps:,} steps on").first.wait_for(timeout=600_000)
                    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=600_000)
                    pages.append(page)
                opened = time.perf_counter() - t
                rss_open = _proc_mib(proc.pid, "VmRSS")
                writer.stdin.write("\n")
                writer.stdin.flush()
                began = time.time()
                while writer.poll() is None:
                    for i, page in enumerate(pages):
                        m = COUNTER.search(page.inner_text("main"))
                        if m:
                            looks.append((i, time.time(), int(m[1].replace(",", ""))))
                    rss.append(_proc_mib(proc.pid, "VmRSS"))
                    time.sleep(0.2)
                outcome = json.loads(writer.stdout.read().strip().splitlines()[-1])
                hwm = _proc_mib(proc.pid, "VmHWM")
                browser.close()
        finally:
            if writer.poll() is None:
                writer.kill()
            proc.terminate()
            proc.wait(timeout=10)
        written = {}
        for line in stamps.read_text().splitlines():
            count, at = line.split()
            written[int(count)] = float(at)
    lags: dict[int, list[float]] = {0: [], 1: []}
    for i, at, shown in looks:
        if at - began < 2.0:            # the first moments: the writer just started again
            continue
        made = written.get(shown, began if shown <= args.long_steps else None)
        if made is not None:
            lags[i].append(max(0.0, at - made))
    return {"prewrite_s": prewrite, "open_s": opened, "lags": lags, "looks": looks, "written_at": written, "rss_open": rss_open,
            "rss_peak": hwm, "rss_max_live": max(rss, default=float("nan")), "rss_end": rss[-1] if rss else None,
            "written": outcome["written"], "rate": outcome["rate"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write-steps", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=10_000, help="steps already in the run watched live")
    ap.add_argument("--rate", type=float, default=10.0, help="steps/s written while it is watched")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--long-steps", type=int, default=1_000_000, help="steps in the long run two sessions follow")
    ap.add_argument("--long-rate", type=float, default=1000.0, help="steps/s it goes on at while followed")
    ap.add_argument("--long-seconds", type=float, default=30.0)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.write_steps, args.steps, args.seconds = 1, 300, 1000, 6
        args.long_steps, args.long_seconds = 20_000, 8
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
    long = two_sessions(args)
    print(f"\n3. two sessions (Findings, Gradients) following a {args.long_steps:,}-step run (fast_writer's cadences: "
          f"200 gradient norms every 10th step, update ratios every 20th; written in {long['prewrite_s']:.0f} s), "
          f"then written on at {long['rate']:,.0f} steps/s for {args.long_seconds:g} s to {long['written']:,} steps")
    for i, name in enumerate(("Findings", "Gradients")):
        lags = sorted(long["lags"][i])
        if lags:
            print(f"   {name:<10} behind the writer: median {lags[len(lags) // 2]:.2f} s, max {lags[-1]:.2f} s "
                  f"({len(lags)} looks; budget 2 s)")
        else:
            print(f"   {name:<10} never showed a step written while it was followed")
    print(f"   server RSS with the run open: {long['rss_open']:.0f} MiB after both pages drew, at most "
          f"{long['rss_max_live']:.0f} MiB while following, peak (VmHWM, the first load included) "
          f"{long['rss_peak']:.0f} MiB (budget 300 MiB); both pages opened in {long['open_s']:.1f} s")
    import streamlit
    print(f"\n{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"streamlit {streamlit.__version__}")


if __name__ == "__main__":
    main()
