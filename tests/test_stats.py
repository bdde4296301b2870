"""A chart never contradicts the finding it explains: a page shows the number its finding measured.

Each test records a real SQLite run log with RunWriter (no torch, no worker), lets the run checks judge it as
`report` does (app.data.load_run), and reads the same number three ways: the finding's evidence, the page's
own summary function, and the page itself through Streamlit's AppTest. The cases are built where the old
page math and the finding's math disagreed: a one-time jump in memory (least squares against Theil-Sen), a
few slow batches (a ratio of sums against medians), 1-D parameters named `weight` (a name suffix against the
tensor's shape).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.data import fmt_bytes, load_run
from app.summaries import data_loading_summary, memory_summary, weight_matrices
from app.evidence import evidence_chart
from probes.runlog import RunWriter
from probes.stats import loader_workers

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")
MIB = 1 << 20


def tensor(name: str, shape: tuple) -> dict:
    return {"name": name, "module": name.rpartition(".")[0], "kind": "parameter", "shape": list(shape),
            "dtype": "float32", "device": "cpu", "requires_grad": True, "numel": int(np.prod(shape)), "lazy": False,
            "optimizer": 0, "param_group": 0, "shared_with": [], "duplicate": False}


def record(run: Path, steps: int, scalars, vectors=None, tree=None, meta=None) -> None:
    """A finished run log: scalars(step) and vectors(step) give each step's records."""
    writer = RunWriter(run / "run.db")
    writer.set_meta(model="StatNet", device="cpu", status="running", started=1.0,
                    optimizers=[{"class": "SGD", "param_groups": [{"lr": 10.0}]}], **(meta or {}))
    if tree is not None:
        writer.write_tree(0, tree)
    for step in range(steps):
        writer.write_step(step, scalars(step), vectors(step) if vectors else {})
    writer.set_meta(status="finished", ended=2.0)
    writer.close()


def page(monkeypatch, root: Path, run: str, view: str) -> AppTest:
    monkeypatch.setenv("FORGESCOPE_RUN_DIR", str(root))
    monkeypatch.setenv("FORGESCOPE_MODEL", "")          # no model file: the pages show the run, nothing runs
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params["run"] = run
    at.run()
    at.switch_page(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def only(findings: list[dict], code: str) -> dict:
    found = [f for f in findings if f["code"] == code]
    assert len(found) == 1, [f["code"] for f in findings]
    return found[0]


def test_the_memory_page_shows_the_growth_the_memory_growth_finding_measured(tmp_path, monkeypatch):
    # 3 MiB per step, with a 400 MiB spike at step 30 (a buffer held for one step): a least-squares line read
    # 3.8 MiB/step, the finding's median slope reads 3
    def rss(step):
        return {"loss": 1.0, "mem.rss_bytes": float(500 * MIB + 3 * MIB * step + (400 * MIB if step == 30 else 0))}
    record(tmp_path / "leak", 40, rss)
    view = load_run(tmp_path / "leak")
    finding = only(view.findings, "memory-growth")
    slope = finding["evidence"]["slope_bytes_per_step"]
    assert slope == pytest.approx(3 * MIB)
    assert memory_summary(view.scalars)["slope"] == slope
    at = page(monkeypatch, tmp_path, "leak", "views/memory.py")
    shown = {m.label: m.value for m in at.metric}["Growth per step"]
    assert shown == f"{fmt_bytes(slope)}/step", shown
    # the chart's legend gives the same growth, in KiB
    legend = [trace["name"] for trace in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert legend == [f"process RSS ({slope / 1024:+,.1f} KiB/step)"], legend


def test_the_data_loading_page_shows_the_share_the_dataloader_stall_finding_measured(tmp_path, monkeypatch):
    # two workers (their first batches carry start-up), a steady 60 ms wait on 100 ms of compute, and three
    # batches that took 2 s: the ratio of sums read 0.69, the finding's median share reads 0.375
    def timing(step):
        wait = 3.0 if step < 2 else 2.0 if step in (10, 20, 30) else 0.06
        return {"loss": 1.0, "data_wait_s": wait, "step_time_s": wait + 0.1}
    record(tmp_path / "slow", 40, timing, meta={"loader": {"class": "DataLoader", "num_workers": 2}, "cpus": 2})
    view = load_run(tmp_path / "slow")
    finding = only(view.findings, "dataloader-stall")
    share = finding["evidence"]["median_share"]
    assert share == pytest.approx(0.06 / 0.16)
    numbers = data_loading_summary(view.scalars, loader_workers(view.meta))
    assert numbers["share"] == share and numbers["median_wait_s"] == finding["evidence"]["median_wait_s"]
    assert numbers["steps"] == finding["evidence"]["steps"] == 38
    at = page(monkeypatch, tmp_path, "slow", "views/data_loading.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Waiting for data"] == f"{share:.0%} of each step"
    assert metrics["Median wait"] == f"{finding['evidence']['median_wait_s'] * 1000:.2f} ms"


def test_the_weights_page_and_the_update_ratio_chart_show_the_weights_the_finding_judged(tmp_path, monkeypatch):
    # LayerNorm's scale is named `weight` but is a vector: the name-suffix rule charted it, the finding (2+
    # dimensions) never judged it
    params = [("fc1.weight", (16, 8)), ("fc1.bias", (16,)), ("norm.weight", (16,)), ("fc2.weight", (4, 16))]
    tree = {"modules": [{"path": "", "class": "StatNet", "location": "net.py:3"},
                        {"path": "fc1", "class": "Linear"}, {"path": "norm", "class": "LayerNorm"},
                        {"path": "fc2", "class": "Linear"}],
            "tensors": [tensor(n, s) for n, s in params], "unregistered": [], "uninitialised": [],
            "optimizer_only": [], "n_optimizers": 1}
    names = [n for n, _ in params]
    ratios = {"fc1.weight": 0.6, "fc1.bias": 0.01, "norm.weight": 2e-3, "fc2.weight": 0.9}
    record(tmp_path / "hot", 6, lambda step: {"loss": 1.0}, tree=tree,
           vectors=lambda step: {"update_ratio": (names, [ratios[n] * (1 + 0.01 * step) for n in names])})
    view = load_run(tmp_path / "hot")
    finding = only(view.findings, "update-ratio")
    judged = {d["name"]: d["update_ratio"] for d in finding["evidence"]["judged"]}
    assert list(judged) == ["fc1.weight", "fc2.weight"]
    shown = weight_matrices(view.get("update_ratio"), view.tree)
    assert list(shown.columns) == list(judged)                       # the page's selection is the finding's
    bars = evidence_chart(finding, view).data[0]
    assert dict(zip(bars.y, bars.x)) == judged                      # the chart draws the finding's medians
    at = page(monkeypatch, tmp_path, "hot", "views/weights.py")
    drawn = [trace["name"] for trace in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert drawn == list(judged), drawn
