"""Run-log speed: write rate and size of 200-parameter steps, full load into pandas, incremental read.

    .venv/bin/python benchmarks/runlog.py            # default: 5,000-step writes x3, 10,000-step loads x5
    .venv/bin/python benchmarks/runlog.py --quick    # smoke run

Records match what a Probe writes for a 200-parameter model: scalars loss, step_time_s, data_wait_s,
mem.rss_bytes (float64) and per-parameter vectors (float32) given as Python lists, as the Probe does.
"record 'brief'": vectors grad_norm and update_ratio. "record 'every step'": what a Probe with every
cadence at 1 writes for 200 parameters in 100 modules (6 parameter series + 4 activation series).
Budgets: write >= 1,000 steps/s ('brief' record); load of 10,000 steps (scalars() + series('grad_norm'))
<= 0.5 s.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.runlog import RunReader, RunWriter  # noqa: E402

N_PARAMS = 200
N_MODULES = 100
PARAM_NAMES = [f"layers.{i // 2}.{'weight' if i % 2 == 0 else 'bias'}" for i in range(N_PARAMS)]
MODULE_NAMES = [""] + [f"layers.{i}" for i in range(N_MODULES - 1)]
PARAM_SERIES = {"brief": ("grad_norm", "update_ratio"),
                "every step": ("grad_norm", "grad_nonfinite", "update_norm", "weight_norm", "update_ratio",
                               "weight_nonfinite")}
ACT_SERIES = ("act_mean", "act_std", "act_zero_frac", "act_nonfinite_frac")


def records(kind: str, n: int, seed: int = 0):
    """n pre-built (scalars, vectors) records, so the timing is the writer's, not the generator's."""
    rnd = random.Random(seed)
    pool = []
    for _ in range(min(n, 64)):
        scalars = {"loss": rnd.random(), "step_time_s": rnd.random() * 0.1, "data_wait_s": rnd.random() * 1e-3,
                   "mem.rss_bytes": float(rnd.randrange(10 ** 9))}
        vectors = {s: (PARAM_NAMES, [rnd.random() for _ in range(N_PARAMS)]) for s in PARAM_SERIES[kind]}
        if kind == "every step":
            vectors.update({s: (MODULE_NAMES, [rnd.random() for _ in range(N_MODULES)]) for s in ACT_SERIES})
        pool.append((scalars, vectors))
    return [pool[i % len(pool)] for i in range(n)]


def disk_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def write(db: Path, recs) -> tuple[float, int]:
    t0 = time.perf_counter()
    w = RunWriter(db)
    for step, (scalars, vectors) in enumerate(recs):
        w.write_step(step, scalars, vectors)
    w.close()
    return time.perf_counter() - t0, disk_bytes(db)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fmt(ts: list[float], unit: float = 1e3) -> str:
    return f"{statistics.median(ts) * unit:>9.2f} {min(ts) * unit:>9.2f} {max(ts) * unit:>9.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--write-steps", type=int, default=5000, help="steps per write run (default 5000)")
    p.add_argument("--read-steps", type=int, default=10000, help="steps in the log that is read (default 10000)")
    p.add_argument("--repeat", type=int, default=5, help="repeats of each read (default 5); writes: 3")
    p.add_argument("--quick", action="store_true", help="smoke run: 500-step writes, 2,000-step reads")
    args = p.parse_args(argv)
    if args.quick:
        args.write_steps, args.read_steps, args.repeat = 500, 2000, 2
    tmp = Path(tempfile.mkdtemp(prefix="forgescope-bench-runlog-"))
    t_all = time.perf_counter()
    ok = True
    try:
        # (i) write rate and size
        print(f"(i) write: one RunWriter, {args.write_steps} steps per run, {N_PARAMS} parameters, "
              f"3 runs each (fresh file)")
        print(f"  {'record':<12} {'steps/s med':>11} {'min':>8} {'max':>8} {'bytes/step':>11} {'ms/step':>8}"
              f"  budget >= 1000 steps/s")
        for kind in ("brief", "every step"):
            recs = records(kind, args.write_steps)
            rates, sizes = [], []
            for r in range(3):
                secs, size = write(tmp / f"w-{kind.replace(' ', '_')}-{r}" / "run.db", recs)
                rates.append(args.write_steps / secs)
                sizes.append(size)
            med = statistics.median(rates)
            verdict = ("OK" if med >= 1000 else "UNDER") if kind == "brief" else "(info)"
            ok &= verdict != "UNDER"
            print(f"  {kind:<12} {med:>11.0f} {min(rates):>8.0f} {max(rates):>8.0f} "
                  f"{statistics.median(sizes) / args.write_steps:>11.0f} {1e3 / med:>8.3f}  {verdict}")

        # (ii) full load, (iii) incremental read
        db = tmp / "read" / "run.db"
        secs, size = write(db, records("brief", args.read_steps))
        n = args.read_steps
        print(f"\n(ii) load {n} steps ('brief' record, {size / 1e6:.1f} MB, written in {secs:.1f} s) into pandas; "
              f"{args.repeat} repeats, fresh RunReader each time")
        print(f"  {'what':<48} {'med ms':>9} {'min ms':>9} {'max ms':>9}  budget")

        def load_all():
            with RunReader(db.parent) as r:
                s, g = r.scalars(), r.series("grad_norm")
            assert len(s) == n and g.shape == (n, N_PARAMS), (s.shape, g.shape)

        def only(method, *a, **kw):
            def fn():
                with RunReader(db.parent) as r:
                    getattr(r, method)(*a, **kw)
            return fn

        rows = [("open RunReader + scalars()", timed(only("scalars"), args.repeat)),
                ("open RunReader + series('grad_norm')", timed(only("series", "grad_norm"), args.repeat))]
        total = timed(load_all, args.repeat)
        rows.append(("open + scalars() + series('grad_norm')", total))
        for name, ts in rows:
            verdict = ""
            if ts is total:
                verdict = "OK (<= 500 ms)" if statistics.median(ts) <= 0.5 else "OVER (> 500 ms)"
                ok &= statistics.median(ts) <= 0.5
            print(f"  {name:<48} {fmt(ts)}  {verdict}")

        after = n - 10
        print(f"\n(iii) incremental read: series('grad_norm', after={after}) -> 10 rows; 50 repeats")
        print(f"  {'what':<48} {'med ms':>9} {'min ms':>9} {'max ms':>9}")
        with RunReader(db.parent) as r:
            r.series("grad_norm", after=after)      # layouts cached, as in a live view polling
            warm = timed(lambda: r.series("grad_norm", after=after), 50)
            warm_s = timed(lambda: r.scalars(after=after), 50)
        cold = timed(only("series", "grad_norm", after=after), 50)
        print(f"  {'same RunReader, series(after=)':<48} {fmt(warm)}")
        print(f"  {'same RunReader, scalars(after=)':<48} {fmt(warm_s)}")
        print(f"  {'fresh RunReader + series(after=)':<48} {fmt(cold)}")

        # the same while a writer holds the file open (the live dashboard case: data still in the WAL)
        live = tmp / "live" / "run.db"
        w = RunWriter(live)
        for step, (scalars, vectors) in enumerate(records("brief", n)):
            w.write_step(step, scalars, vectors)
        try:
            def load_live():
                with RunReader(live) as r:
                    r.scalars(), r.series("grad_norm")
            live_load = timed(load_live, args.repeat)
            with RunReader(live) as r:
                r.series("grad_norm", after=after)
                live_inc = timed(lambda: r.series("grad_norm", after=after), 50)
        finally:
            w.close()
        print(f"\n(ii/iii) with the writer still open ({disk_bytes(live) / 1e6:.1f} MB incl. WAL)")
        print(f"  {'open + scalars() + series(), writer open':<48} {fmt(live_load)}")
        print(f"  {'same RunReader, series(after=), writer open':<48} {fmt(live_inc)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nbudgets met: {'yes' if ok else 'NO'}    (total {time.perf_counter() - t_all:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
