"""The run log and the tree at scale: 100,000 steps x 500 parameters, and a 2,000-module model.

    .venv/bin/python benchmarks/scale.py             # table + benchmarks/results/scale.png
    .venv/bin/python benchmarks/scale.py --quick     # smoke run (5,000 steps, 100 blocks)

1. Run log. A real Probe at its defaults records 200 steps of a real model with 500 parameter tensors
   (125 residual blocks x + Linear(ReLU(LayerNorm(x))), width 32, Adam). Its run log is then continued to
   100,000 steps by writing the records of its steps 100-199 (one whole period of every default cadence)
   again and again under new step numbers, through the same RunWriter.write_step the Probe calls. Reported: the write rate of those
   appended steps, and the bytes per step of the finished log on disk (also per 200 parameters). The same
   for everything-every-step records, on a 10,000-step log.
2. Open. The dashboard's reader, app.data.load_run (every series into pandas, plus the run checks), on the
   100,000-step log: first call and again.
3. Pages. The dashboard server on that log, in a real browser (the system's chromium, 1280x720): seconds from
   a click on each page's link to its heading and first chart drawn, first view and again.
4. Tree. The registration tree of a real 2,002-module model (500 blocks of Linear, LayerNorm, ReLU): snapshot
   time, and the tree page's render.
Goals: >= 5,000 steps/s written; <= 1 KiB per step per 200 parameters; the 100,000 steps open in <= 1 s.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import dashboard  # noqa: E402
import plotting  # noqa: E402

GOAL_RATE, GOAL_BYTES, GOAL_OPEN = 5_000, 1024, 1.0
N_BLOCKS = 125          # 4 parameter tensors each: 500


def disk_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def recorded_run(root: Path, name: str, cadences: dict) -> tuple[Path, list]:
    """A real Probe on a real model for 200 steps; (run path, the write_step calls it made)."""
    import torch
    from torch import nn

    from probes import Probe
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm, self.fc = nn.LayerNorm(32), nn.Linear(32, 32)

        def forward(self, x):
            return x + self.fc(torch.relu(self.norm(x)))

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(*(Block() for _ in range(N_BLOCKS - 1)))
            self.norm, self.head = nn.LayerNorm(32), nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.norm(self.blocks(x)))

    torch.manual_seed(0)
    model = Residual()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(16, 32, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(8)]
    calls = []
    with Probe(model, opt, run_dir=root, run_name=name, **cadences) as probe:
        write = probe._writer.write_step

        def keep(step, scalars, vectors={}, **kw):
            calls.append((step, dict(scalars), {k: (list(n), list(v)) for k, (n, v) in vectors.items()}))
            return write(step, scalars, vectors, **kw)
        probe._writer.write_step = keep
        for x, y in probe.wrap(data * 25):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert len(calls) == 200 and probe.error is None, probe.error
    return probe.run_path, calls


def extend_log(run: Path, calls: list, steps: int) -> tuple[float, int]:
    """Append steps 200..steps-1 replaying the records of steps 100-199; (seconds, bytes on disk)."""
    from probes.runlog import DB_NAME, RunWriter
    period = calls[100:200]
    writer = RunWriter(run / DB_NAME)
    t = time.perf_counter()
    for step in range(200, steps):
        _, scalars, vectors = period[step % 100]
        writer.write_step(step, scalars, vectors)
    took = time.perf_counter() - t
    writer.close()
    return took, disk_bytes(run / DB_NAME)


def plot(pages: dict, tree_row: tuple, facts: list[str], path: Path, title: str) -> str:
    plt = plotting.pyplot()
    if plt is None:
        return plotting.MISSING
    names = list(pages) + [tree_row[0]]
    first = [pages[n][0] for n in pages] + [tree_row[1]]
    again = [pages[n][1] for n in pages] + [tree_row[2]]
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, gridspec_kw={"width_ratios": [3, 2]})
    ys = range(len(names))
    ax.barh([y - 0.2 for y in ys], first, 0.4, label="first view", color="#4c6ef5")
    ax.barh([y + 0.2 for y in ys], again, 0.4, label="again", color="#91a7ff")
    for y, a, b in zip(ys, first, again):
        ax.text(a + 0.03, y - 0.2, f"{a:.2f}", va="center", fontsize=7)
        ax.text(b + 0.03, y + 0.2, f"{b:.2f}", va="center", fontsize=7)
    ax.set_yticks(list(ys), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds from click to heading + chart drawn")
    ax.legend(fontsize=8)
    tx.axis("off")
    tx.text(0, 1, "\n".join(facts), va="top", fontsize=8.5, family="monospace")
    fig.suptitle(title, fontsize=9)
    return plotting.save(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000, help="steps of the defaults log (default 100,000)")
    ap.add_argument("--every-steps", type=int, default=10_000, help="steps of the every-step log")
    ap.add_argument("--blocks", type=int, default=500, help="blocks of the wide model (4 modules each)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 5,000 steps, 2,000 every-step, 100 blocks")
    ap.add_argument("--no-browser", action="store_true", help="skip the page timings (3 and 4's page)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--plot", default=str(HERE / "results" / "scale.png"), help="where the PNG goes")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.every_steps, args.blocks = 5_000, 2_000, 100
    if args.steps < 300 or args.every_steps < 300:
        ap.error("--steps and --every-steps: at least 300")
    import torch
    torch.set_num_threads(1)

    from app.data import load_run
    from probes import DEFAULTS

    t_all = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="forgescope-scale-"))
    facts = []
    try:
        print(f"1. Run log: a real Probe, 200 steps of {N_BLOCKS} residual blocks ({4 * N_BLOCKS} parameter tensors), "
              f"continued by replaying its steps 100-199", flush=True)
        rows = {}
        for label, name, cadences, steps in (
                ("defaults", "defaults", {}, args.steps),
                ("every step", "every", dict(grad_norm=1, update_size=1, activations=1, memory=1, tree=1),
                 args.every_steps)):
            run, calls = recorded_run(root, name, cadences)
            took, size = extend_log(run, calls, steps)
            rate = (steps - 200) / took
            per_step = size / steps
            rows[label] = (run, steps, rate, per_step)
            print(f"  {label:<11} {steps:>8,} steps  written at {rate:>8,.0f} steps/s   {per_step:>7,.0f} bytes/step"
                  f"  = {per_step * 200 / (4 * N_BLOCKS):>6,.0f} bytes/step per 200 parameters", flush=True)
        run, steps, rate, per_step = rows["defaults"]
        per200 = per_step * 200 / (4 * N_BLOCKS)
        cad = ", ".join(f"{k}={v}" for k, v in DEFAULTS.items() if k in ("grad_norm", "update_size", "activations"))
        print(f"  (defaults: {cad}; every step: all of them at 1)")

        print(f"\n2. Open the {steps:,}-step log in the dashboard's reader (app.data.load_run)", flush=True)
        opens = []
        for _ in range(3):
            t = time.perf_counter()
            view = load_run(run)
            opens.append(time.perf_counter() - t)
        print(f"  first {opens[0]:.2f} s, again {min(opens[1:]):.2f} s  ({view.steps:,} steps, "
              f"{len(view.series)} series, {len(view.findings)} findings)")

        print(f"\n4. Tree: a {args.blocks}-block model", flush=True)
        wide, n_modules, snap = dashboard.wide_tree_run(root, args.blocks)
        print(f"  snapshot of the registration tree of {n_modules:,} modules: {snap:.3f} s")

        pages, wide_rows = {}, []
        if not args.no_browser:
            from playwright.sync_api import sync_playwright
            print(f"\n3. Pages of the {steps:,}-step run in chromium, and 4. the tree page", flush=True)
            proc, url, _ = dashboard.start_server(root)
            try:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                    page = browser.new_page(viewport={"width": 1280, "height": 720})
                    t = time.monotonic()
                    page.goto(f"{url}/?run={run.name}")
                    page.get_by_role("heading", name="Findings").first.wait_for(timeout=120_000)
                    first_open = time.monotonic() - t
                    for _ in range(2):      # the first round also loads each chart type's code once
                        for name in dashboard.PAGES[1:] + dashboard.PAGES[:1]:
                            pages.setdefault(name, []).append(dashboard.click_page(page, name))
                    page.goto(f"{url}/?run={wide.name}")
                    page.get_by_role("heading", name="Findings").first.wait_for(timeout=120_000)
                    for _ in range(2):
                        wide_rows.append(dashboard.click_page(page, "Registration tree"))
                        dashboard.click_page(page, "Runs")
                    browser.close()
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            print(f"  the run's link opened on Findings in {first_open:.2f} s (server loads the run)")
            print(f"  {'page':<24}{'first view':>11}{'again':>8}")
            for name, (a, b) in pages.items():
                print(f"  {name:<24}{a:>11.2f}{b:>8.2f}")
            print(f"  {'tree, ' + format(n_modules, ',') + ' modules':<24}{wide_rows[0]:>11.2f}{wide_rows[1]:>8.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print("\nGoals")
    checks = [(f"write rate >= {GOAL_RATE:,} steps/s", f"{rate:,.0f} steps/s", rate >= GOAL_RATE),
              (f"<= {GOAL_BYTES:,} bytes/step per 200 parameters (defaults)", f"{per200:,.0f}", per200 <= GOAL_BYTES),
              (f"{steps:,} steps open in <= {GOAL_OPEN} s (first)", f"{opens[0]:.2f} s", opens[0] <= GOAL_OPEN)]
    for what, value, ok in checks:
        print(f"  {what:<52} {value:>16}  {'met' if ok else 'MISSED'}")
    import pandas
    import streamlit
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch "
               f"{torch.__version__}, pandas {pandas.__version__}, streamlit {streamlit.__version__}")
    print(machine)
    if pages:
        facts = [f"run log, {4 * N_BLOCKS} parameters, Probe defaults",
                 f"  {steps:,} steps written at {rate:,.0f} steps/s",
                 f"  {per_step:,.0f} bytes/step ({per200:,.0f} per 200 params)",
                 f"  every step: {rows['every step'][3]:,.0f} bytes/step",
                 f"  opened (load_run) in {opens[0]:.2f} s, again {min(opens[1:]):.2f} s",
                 f"tree of {n_modules:,} modules",
                 f"  snapshot {snap:.3f} s"]
        print(plot({k: tuple(v) for k, v in pages.items()}, (f"Tree, {n_modules:,} modules", *wide_rows), facts,
                   Path(args.plot),
                   f"Dashboard pages on a {steps:,}-step x {4 * N_BLOCKS}-parameter run — {machine}"))
    print(f"total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
