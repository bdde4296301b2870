"""Dashboard page budgets, measured in a real browser.

1. Home page: a bundled sample already checked; seconds from the server answering (health check) to its
   findings on screen. Budget 5 s.
2. A recorded run of 10,000 steps x 200 parameters: seconds for each page to render (navigation click to
   the page's heading and first chart visible). Budget 3 s per page.
3. A real model of about 2,000 modules (500 blocks of Linear, LayerNorm and ReLU in a ModuleList): the
   registration tree's snapshot time, and the tree page's render time.
Also: loading that run into the pages' frames (app.data.load_run) and building each figure, in process.

    python benchmarks/dashboard.py [--steps 10000] [--params 200] [--blocks 500] [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ["Findings", "Registration tree", "Gradients", "Weights", "Memory", "Data loading", "Runs"]


def synthetic_run(run_dir: Path, steps: int, params: int) -> Path:
    """A run log shaped like a real one: per-parameter series every step, scalars, a tree, one finding."""
    from probes.runlog import RunWriter
    path = run_dir / "bench-10k"
    path.mkdir(parents=True)
    layers = params // 2
    names = [f"blocks.{i}.fc.{kind}" for i in range(layers) for kind in ("weight", "bias")]
    modules = [{"path": "", "class": "Net", "label": "Net", "location": None}]
    modules += [{"path": "blocks", "class": "ModuleList", "label": "ModuleList", "location": None}]
    for i in range(layers):
        modules += [{"path": f"blocks.{i}", "class": "Block", "label": "Block", "location": None},
                    {"path": f"blocks.{i}.fc", "class": "Linear", "label": "Linear 64→64", "location": None}]
    tensors = [{"name": n, "module": n.rsplit(".", 1)[0], "kind": "parameter", "shape": [64, 64] if
                n.endswith("weight") else [64], "dtype": "float32", "device": "cpu", "requires_grad": True,
                "numel": 4096 if n.endswith("weight") else 64, "optimizer": 0, "param_group": 0, "shared_with": []}
               for n in names]
    writer = RunWriter(path / "run.db")
    writer.set_meta(model="Net", device="cpu", started=time.time(), status="finished", source="benchmark",
                    model_file=str(ROOT / "sample_models/mlp.py"))
    writer.write_tree(0, {"model": "Net", "modules": modules, "tensors": tensors, "unregistered": [],
                          "uninitialised": [], "optimizer_only": []})
    rng = np.random.default_rng(0)
    base = rng.uniform(0.01, 1.0, len(names))
    for step in range(steps):
        g = base * (1 + 0.1 * rng.standard_normal(len(names)))
        writer.write_step(step, {"loss": 2.3 * np.exp(-step / 3000), "step_time_s": 0.01, "data_wait_s": 0.001,
                                 "mem.rss_bytes": 4e8 + step * 10.0},
                          {"grad_norm": (names, g), "update_norm": (names, g * 1e-3),
                           "update_ratio": (names, g * 1e-3), "weight_norm": (names, base * 10)})
    writer.close()
    return path


def wide_tree_run(run_dir: Path, blocks: int) -> tuple[Path, int, float]:
    """A run holding only the registration tree of a real wide model; (path, modules, snapshot seconds)."""
    import torch
    from torch import nn

    from probes.runlog import RunWriter
    from probes.tree import snapshot

    def block() -> nn.Module:
        return nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16), nn.ReLU())

    model = nn.Module()
    model.blocks = nn.ModuleList(block() for _ in range(blocks))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    t = time.perf_counter()
    tree = snapshot(model, [optimizer])
    took = time.perf_counter() - t
    path = run_dir / "bench-wide-tree"
    path.mkdir(parents=True)
    writer = RunWriter(path / "run.db")
    writer.set_meta(model="Wide", device="cpu", started=time.time(), status="finished", source="benchmark")
    writer.write_tree(0, tree)
    writer.close()
    return path, len(tree["modules"]), took


def click_page(page, name: str) -> float:
    """Seconds from a click on the page's link to its heading and first chart drawn."""
    t = time.monotonic()
    page.get_by_role("link", name=name).first.click()
    page.get_by_role("heading", name=name).first.wait_for(timeout=60_000)
    if name not in ("Runs", "Findings"):
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    return time.monotonic() - t


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run_root: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env={**os.environ,
                                                                         "FORGESCOPE_RUN_DIR": str(run_root)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url, time.monotonic()
        except OSError:
            time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--params", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=500, help="blocks of the wide model (4 modules each)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from app import figures, tree_figure
    from app.data import load_run
    from app.summaries import nonfinite_steps

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        run = synthetic_run(root, args.steps, args.params)
        print(f"wrote {args.steps:,} steps x {args.params} parameters in {time.perf_counter() - t:.1f} s")
        wide, n_modules, snap = wide_tree_run(root, args.blocks)
        print(f"registration tree snapshot of a {n_modules:,}-module model: {snap:.2f} s")
        t = time.perf_counter()
        view = load_run(run)
        print(f"load_run (all series + run checks): {time.perf_counter() - t:.3f} s")
        for name, build in [("grad_heatmap", lambda: figures.grad_heatmap(view.get("grad_norm"), nonfinite_steps(view))),
                            ("update_ratio", lambda: figures.update_ratio_figure(view.get("update_ratio"))),
                            ("memory", lambda: figures.memory_figure(view.scalars)),
                            ("data_loading", lambda: figures.data_loading_figure(view.scalars)),
                            ("tree", lambda: tree_figure.tree_figure(view.tree))]:
            t = time.perf_counter()
            build()
            print(f"  figure {name}: {time.perf_counter() - t:.3f} s")
        # the home page: the default sample checked beforehand, as the Quick start line does
        subprocess.run([sys.executable, "-m", "probes", "check", "sample_models/unregistered_module.py",
                        "--run-dir", str(root)], cwd=ROOT, capture_output=True, timeout=300)
        proc, url, answered = start_server(root)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(url)
                page.get_by_text("unregistered-module").first.wait_for(timeout=60_000)
                home = time.monotonic() - answered
                print(f"\nhome page findings on screen {home:.2f} s after the server answered (budget 5 s)")
                page.goto(f"{url}/?run={run.name}")
                page.get_by_role("heading", name="Findings").first.wait_for(timeout=60_000)
                rows: dict[str, list[float]] = {}
                for _ in range(2):          # the first round also loads each chart type's code once
                    for name in PAGES[1:] + PAGES[:1]:
                        rows.setdefault(name, []).append(click_page(page, name))
                page.goto(f"{url}/?run={wide.name}")
                page.get_by_role("heading", name="Findings").first.wait_for(timeout=60_000)
                page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
                wide_rows = []
                for _ in range(2):
                    wide_rows.append(click_page(page, "Registration tree"))
                    click_page(page, "Runs")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"\n{args.steps:,}-step x {args.params}-parameter run, page render (click to heading + chart, budget 3 s)")
    print(f"{'page':<20}{'first view':>11}{'again':>8}")
    for name, (first, again) in rows.items():
        print(f"{name:<20}{first:>11.2f}{again:>8.2f}")
    print(f"{'tree, ' + format(n_modules, ',') + ' modules':<20}{wide_rows[0]:>11.2f}{wide_rows[1]:>8.2f}")
    import plotly
    import streamlit
    print(f"\n{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"streamlit {streamlit.__version__}, plotly {plotly.__version__}")


if __name__ == "__main__":
    main()
