"""Wall time of `python -m probes check MODEL_FILE --steps 20`, as a user runs it (a fresh process each time).

    .venv/bin/python benchmarks/check_time.py                    # sample_models/mlp.py (or the first clean sample)
    .venv/bin/python benchmarks/check_time.py path/to/model.py --runs 3 --steps 20
    .venv/bin/python benchmarks/check_time.py --all              # every file in sample_models/, once each

Runs from the repository root with --run-dir in a temporary folder (deleted afterwards). For reference it
also times `python -c "import torch"` and the worker's own imports, the floor that the worker process
pays before doing anything.
Budget: median <= 15 s.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 15.0

TINY_MLP = '''"""A tiny clean MLP (written by benchmarks/check_time.py when sample_models/ has no clean sample)."""
import torch
from torch import nn


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)
'''


def find_clean_sample() -> Path | None:
    """sample_models/mlp.py, else the first sample that says it is clean (name or docstring)."""
    folder = ROOT / "sample_models"
    preferred = folder / "mlp.py"
    if preferred.is_file():
        return preferred
    files = sorted(folder.glob("*.py")) if folder.is_dir() else []
    for f in files:
        head = f.read_text(errors="replace")[:200].lower()
        if "clean" in f.stem.lower() or "clean" in head:
            return f
    return None


def step_times(run_root: Path) -> list[float]:
    """step_time_s of every step in the run log the check wrote (empty if none)."""
    sys.path.insert(0, str(ROOT))
    from probes.runlog import RunReader
    from probes.runs import list_runs
    runs = list_runs(run_root)
    if not runs:
        return []
    with RunReader(runs[-1]) as reader:
        frame = reader.scalars()
    return [float(v) for v in frame["step_time_s"].dropna()] if "step_time_s" in frame else []


def timed_run(cmd: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.returncode, (proc.stdout + proc.stderr)


def all_samples(steps: int, tmp: Path) -> int:
    """Every sample once, as a user runs it (default steps unless --steps is given): a table and the worst."""
    rows = []
    for i, f in enumerate(sorted((ROOT / "sample_models").glob("*.py"))):
        cmd = [sys.executable, "-m", "probes", "check", f"sample_models/{f.name}", "--run-dir", str(tmp / f"r{i}")]
        if steps:
            cmd += ["--steps", str(steps)]
        secs, code, _ = timed_run(cmd)
        rows.append((f.name, secs, code))
        print(f"  {f.name:<36} {secs:>7.2f} s  exit {code}", flush=True)
    worst = max(rows, key=lambda r: r[1])
    times = [r[1] for r in rows]
    print(f"\n{len(rows)} samples: median {statistics.median(times):.2f} s, slowest {worst[0]} {worst[1]:.2f} s")
    print(f"budget <= {BUDGET_S:g} s each: {'OK' if worst[1] <= BUDGET_S else 'OVER'}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_file", nargs="?", help="model file to check (default: sample_models/mlp.py or the first "
                                                  "clean sample; a tiny MLP written to a temp folder if none)")
    p.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    p.add_argument("--steps", type=int, default=None,
                   help="--steps passed to check (default 20; with --all, the check's own default)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 run")
    p.add_argument("--all", action="store_true", help="every file in sample_models/ once (the check's default "
                                                      "steps unless --steps is given)")
    p.add_argument("--show-output", action="store_true", help="print the check's own output of the last run")
    args = p.parse_args(argv)
    runs = 1 if args.quick else args.runs
    tmp = Path(tempfile.mkdtemp(prefix="forgescope-bench-check-"))
    if args.all:
        try:
            return all_samples(args.steps, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    args.steps = args.steps or 20
    try:
        if args.model_file:
            model_file = Path(args.model_file).resolve()
        else:
            model_file = find_clean_sample()
            if model_file is None:
                model_file = tmp / "tiny_mlp.py"
                model_file.write_text(TINY_MLP)
                print(f"no clean sample in sample_models/: checking a tiny MLP written to {model_file}")
        shown = model_file.relative_to(ROOT) if model_file.is_relative_to(ROOT) else model_file
        cmd = [sys.executable, "-m", "probes", "check", str(shown), "--steps", str(args.steps),
               "--run-dir", str(tmp / "runs")]
        print(f"command (cwd {ROOT}): python -m probes check {shown} --steps {args.steps} --run-dir <tmp>")
        floor = [timed_run([sys.executable, "-c", "import torch"])[0] for _ in range(runs)]
        floor2 = [timed_run([sys.executable, "-c", "import probes.probe, probes.worker"])[0] for _ in range(runs)]
        times, codes, out, in_steps, first = [], [], "", [], []
        for i in range(runs):
            cmd[-1] = str(tmp / f"runs-{i}")
            secs, code, out = timed_run(cmd)
            times.append(secs)
            codes.append(code)
            steps = step_times(tmp / f"runs-{i}")
            if steps:
                in_steps.append(sum(steps))
                first.append(steps[0])
        med = statistics.median(times)
        w = max(48, len(f"python -m probes check {shown}"))
        print(f"\n  {'what':<{w}} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}  exit codes")
        for label, ts in (('python -c "import torch"', floor),
                          ('python -c "import probes.probe, probes.worker"', floor2)):
            print(f"  {label:<{w}} {runs:>4} {statistics.median(ts):>9.2f} {min(ts):>7.2f} {max(ts):>7.2f}")
        print(f"  {'python -m probes check ' + str(shown):<{w}} {runs:>4} {med:>9.2f} {min(times):>7.2f} "
              f"{max(times):>7.2f}  {codes}")
        if in_steps:
            for label, ts in ((f"  of which the {args.steps} training steps (run log)", in_steps),
                              ("  of which the first step (run log)", first)):
                print(f"  {label:<{w}} {len(ts):>4} {statistics.median(ts):>9.2f} {min(ts):>7.2f} {max(ts):>7.2f}")
        print(f"\nbudget <= {BUDGET_S:g} s: {'OK' if med <= BUDGET_S else 'OVER'} (median {med:.2f} s)")
        if any(codes):
            print(f"note: the check exited {codes} (0 = no error-level finding); its last output:")
        if any(codes) or args.show_output:
            print("\n".join("    " + line for line in out.strip().splitlines()[-25:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
