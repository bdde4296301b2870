"""A run log on a shared filesystem (the published layout, probes.segments), forced on this disk with
FORGESCOPE_SHARED_FS=1: what publishing costs the writer and how fresh a reader on another host is.

A writer thread writes 200-parameter steps (grad_norm and update_ratio, as a Probe writes them) at --rate
steps/s for --seconds, twice, side by side in one process: to a single live file (a local disk) and
published every --publish seconds. Measured:
1. the writing thread's CPU time per step (time.thread_time) in both modes, and the publishing thread's
   CPU time per second of run (the process's CPU time less the writer's and the main thread's);
2. a reader on "another host" (a subprocess with FORGESCOPE_HOST_ID set apart) polling every 0.5 s as the
   dashboard does: how old the newest step it sees is (median, 95th percentile, max), and what one refresh
   costs it (open the log, count steps);
3. the published files: the most pieces at once, bytes copied into the run directory per byte of final
   log (the merges' write amplification), and that the reader counts every step at the end.

    python benchmarks/cluster.py [--rate 1000] [--seconds 30] [--publish 5] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAMES = [f"blocks.{i}.fc.{k}" for i in range(100) for k in ("weight", "bias")]

READER = r"""
import json, os, sys, time
from probes.runlog import RunReader
run, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows, t0 = [], time.time()
while time.time() - t0 < seconds:
    t = time.perf_counter()
    try:
        with RunReader(run) as r:
            last = r.recent_step_times(1)
    except Exception:
        last = []
    cost = time.perf_counter() - t
    pieces = len([n for n in os.listdir(run + "/segments") if n.endswith(".db")]) if os.path.isdir(run + "/segments") else 0
    rows.append([time.time(), last[0][0] if last else None, last[0][1] if last else None, cost, pieces])
    time.sleep(0.5)
with RunReader(run) as r:
    final = r.step_count()
json.dump({"rows": rows, "final": final}, open(out, "w"))
"""


def write(path: Path, rate: float, seconds: float, shared: bool) -> dict:
    from probes import segments
    from probes.runlog import RunWriter
    copied = [0]
    original = segments.copy_into

    def counting(src, target):
        copied[0] += os.path.getsize(src)
        return original(src, target)
    segments.copy_into = counting
    rng = np.random.default_rng(0)
    result: dict = {}

    def loop():
        writer = RunWriter(path / "run.db", shared=shared)
        writer.set_meta(status="running", model="Net", started=time.time())
        cpu, steps, t0, start = 0.0, 0, time.time(), time.thread_time()
        while time.time() - t0 < seconds:
            g = rng.uniform(0.01, 1.0, len(NAMES)).tolist()
            c = time.thread_time()
            writer.write_step(steps, {"loss": 1.0 / (steps + 1), "step_time_s": 1 / rate, "data_wait_s": 0.0,
                                      "mem.rss_bytes": 4e8}, {"grad_norm": (NAMES, g), "update_ratio": (NAMES, g)})
            cpu += time.thread_time() - c
            steps += 1
            time.sleep(max(0.0, t0 + steps / rate - time.time()))
        writer.set_meta(status="finished")
        c = time.thread_time()
        writer.close()
        result.update(cpu=cpu, steps=steps, close_s=time.thread_time() - c, thread=time.thread_time() - start)
    process0, main0 = time.process_time(), time.thread_time()
    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    segments.copy_into = original
    # what neither the writing thread (its whole loop, close included) nor this one used: the publisher's
    other = time.process_time() - process0 - (time.thread_time() - main0) - result["thread"]
    size = os.path.getsize(path / "run.db")
    return {"us_per_step": 1e6 * result["cpu"] / result["steps"], "steps": result["steps"],
            "publisher_ms_per_s": 1000 * max(other, 0.0) / seconds, "copied": copied[0] / size if shared else 0.0,
            "size": size, "close_s": result["close_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--publish", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.publish = 6.0, 1.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.update(FORGESCOPE_STAGING_DIR=str(root / "staging"), FORGESCOPE_HOST_ID="node0",
                          FORGESCOPE_PUBLISH_EVERY_S=str(args.publish))
        local = write(root / "local" / "run", args.rate, args.seconds, shared=False)
        run = root / "shared" / "run"
        out = root / "reader.json"
        env = {**os.environ, "FORGESCOPE_HOST_ID": "login", "PYTHONPATH": str(ROOT)}
        reader = subprocess.Popen([sys.executable, "-c", READER, str(run), str(out), str(args.seconds + 2)],
                                  cwd=ROOT, env=env)
        shared = write(run, args.rate, args.seconds, shared=True)
        reader.wait(timeout=args.seconds + 120)
        got = json.loads(out.read_text())
    rows = [r for r in got["rows"] if r[2] is not None and r[0] - got["rows"][0][0] > args.publish]
    ages = np.array([r[0] - r[2] for r in rows]) if rows else np.array([np.nan])
    costs = np.array([r[3] for r in got["rows"]]) * 1000
    print(f"A 200-parameter run at {args.rate:,.0f} steps/s for {args.seconds:g} s; published every {args.publish:g} s")
    print(f"{'':<28}{'µs/step (writer CPU)':>22}{'steps':>9}{'publisher ms/s':>16}{'close (s)':>11}")
    for label, r in (("one live file (local disk)", local), ("published (shared fs)", shared)):
        print(f"{label:<28}{r['us_per_step']:>22.1f}{r['steps']:>9,}{r['publisher_ms_per_s']:>16.1f}{r['close_s']:>11.2f}")
    print(f"\nreader on another host, every 0.5 s: newest step it sees is {np.median(ages):.2f} s old (median), "
          f"{np.percentile(ages, 95):.2f} s (p95), {ages.max():.2f} s (max); budget {args.publish:g} s + one refresh")
    print(f"one refresh (open + last step): median {np.median(costs):.1f} ms, max {costs.max():.1f} ms")
    print(f"pieces in the run directory at once: at most {max(r[4] for r in got['rows'])}; bytes copied into it "
          f"{shared['copied']:.1f}x the final log ({shared['size'] / 2**20:.1f} MiB); every step read back: "
          f"{'yes' if got['final'] == shared['steps'] else 'NO'} ({got['final']:,} of {shared['steps']:,})")
    print(f"\n{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
