"""A long run on the dashboard: held downsampled (the last steps exact, older ones as per-bucket min and max),
extended with only its new steps, checked over the whole log, exported exact; and one session never waits
for another's refresh. The sizes are shrunk (app.longrun's constants) so a few thousand steps are "long"."""
import json
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from app import caches, longrun  # noqa: E402
from app.data import extend_run, load_run, statistics_frame  # noqa: E402
from probes.runlog import RunReader, RunWriter  # noqa: E402

NAMES = [f"fc{i}.weight" for i in range(4)]
SPIKE = 123


@pytest.fixture
def small(monkeypatch):
    for name, value in (("EXACT_STEPS", 200), ("FOLD_SLACK", 100), ("HEAD_BUCKETS", 16), ("CHUNK_STEPS", 300)):
        monkeypatch.setattr(longrun, name, value)
    monkeypatch.setattr(longrun, "LONG_AFTER", 300)


def write(path: Path, start: int, stop: int) -> None:
    writer = RunWriter(path / "run.db")
    if start == 0:
        writer.set_meta(model="Net", device="cpu", status="finished", started=1.0)
    rng = np.random.default_rng(start)
    for step in range(start, stop):
        grads = rng.uniform(0.5, 1.0, len(NAMES)) * (1000.0 if step == SPIKE else 1.0)
        writer.write_step(step, {"loss": 1000.0 if step == SPIKE else 1.0 / (1 + step)},
                          {"grad_norm": (NAMES, grads)} if step % 2 == 0 or step == SPIKE else {})
    writer.close()


def test_a_long_run_keeps_its_last_steps_exact_and_each_old_buckets_extremes(small, tmp_path):
    write(tmp_path, 0, 2000)
    view = load_run(tmp_path)
    first, width = view.downsampled
    assert view.steps == 2000 and 1800 - width < first <= 1800 and width > 1
    with RunReader(tmp_path) as reader:
        exact_loss, exact_grad = reader.scalars()["loss"], reader.series("grad_norm")
    tail = view.scalars.loc[first:, "loss"]
    assert tail.equals(exact_loss.loc[first:])                       # every recent step, exactly
    assert view.get("grad_norm").loc[first:].equals(exact_grad.loc[first:])
    assert len(view.scalars) < 2 * longrun.HEAD_BUCKETS + 2000 - first + 1
    head = view.scalars.loc[:first - 1, "loss"]
    assert head.max() == 1000.0 and head.min() == exact_loss.loc[:first - 1].min()   # the spike is still there
    assert view.get("grad_norm").loc[:first - 1].max().min() >= 500.0
    assert view.get("grad_norm").loc[:first - 1].min().min() == pytest.approx(exact_grad.loc[:first - 1].min().min())


def test_extending_a_downsampled_run_reads_only_new_steps_and_matches_a_fresh_load(small, tmp_path):
    write(tmp_path, 0, 1000)
    view = load_run(tmp_path)
    assert view.downsampled is not None
    for stop in (1400, 2600, 4100):           # the buckets widen on the way
        write(tmp_path, view.steps, stop)
        view = extend_run(view)
        fresh = load_run(tmp_path)
        assert view.steps == fresh.steps == stop and view.downsampled == fresh.downsampled
        assert view.scalars["loss"].equals(fresh.scalars["loss"])
        assert np.allclose(view.get("grad_norm").to_numpy(), fresh.get("grad_norm").to_numpy())


def test_an_exact_view_that_grows_long_is_downsampled_in_place(small, tmp_path):
    write(tmp_path, 0, 250)
    view = load_run(tmp_path)
    assert view.downsampled is None and len(view.scalars) == 250
    write(tmp_path, 250, 1500)
    view = extend_run(view)
    assert view.steps == 1500 and view.downsampled is not None
    assert view.scalars["loss"].max() == 1000.0 and view.scalars.index[-1] == 1499


def test_a_downsampled_run_has_the_findings_and_exports_of_the_full_data(small, tmp_path, monkeypatch):
    """Gradient norms that grow 10,000x from step 600 on and a process that leaks 2 MiB a step: the
    exploding-gradients step (in the folded part) and the memory slope are those of every step."""
    path = tmp_path
    writer = RunWriter(path / "run.db")
    writer.set_meta(model="Net", device="cpu", status="finished", started=1.0)
    rng = np.random.default_rng(0)
    for step in range(1200):
        grow = 1.0 if step < 600 else 10 ** min(4.0, (step - 600) / 50)
        writer.write_step(step, {"loss": 1.0, "mem.rss_bytes": 4e8 + step * 2 * 2**20 + rng.uniform(0, 1e5)},
                          {"grad_norm": (NAMES, rng.uniform(0.5, 1.0, len(NAMES)) * grow)})
    writer.close()
    view = load_run(path)
    assert view.downsampled is not None
    monkeypatch.setattr(longrun, "LONG_AFTER", 10**9)
    exact = load_run(path)
    assert exact.downsampled is None and exact.findings
    assert {f["code"] for f in exact.findings} >= {"exploding-gradients", "memory-growth"}
    assert view.findings == exact.findings
    stats = statistics_frame(view)
    assert stats.equals(statistics_frame(exact))
    assert stats["step"].nunique() == 1200


def test_a_session_is_served_the_last_view_while_another_refreshes_the_run(small, tmp_path, monkeypatch):
    write(tmp_path, 0, 100)
    views = caches._Views()
    first = views.get(str(tmp_path), ("v1",))
    entered, release = threading.Event(), threading.Event()

    def slow_extend(view):
        entered.set()
        release.wait(30)
        return load_run(view.path)

    monkeypatch.setattr(caches, "extend_run", slow_extend)
    write(tmp_path, 100, 150)
    got = {}
    refresher = threading.Thread(target=lambda: got.setdefault("a", views.get(str(tmp_path), ("v2",))))
    refresher.start()
    assert entered.wait(30)
    assert views.get(str(tmp_path), ("v2",)) is first          # not kept waiting: the view it had
    release.set()
    refresher.join(30)
    assert got["a"].steps == 150
    assert views.get(str(tmp_path), ("v2",)) is got["a"]


TRIM = r"""
import json, threading
from app import server
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
kept, out = [], {}
def refresh():                      # a session's thread builds frames, keeps a tenth, drops the rest
    junk = [bytes(1000) for _ in range(200_000)]
    kept.extend(junk[::10])
    del junk
    out["freed"] = rss()
t = threading.Thread(target=refresh)
t.start()
t.join()
out["trimmed"] = server.trim_memory()
out["again"] = server.trim_memory()         # at most once a second
out["after"] = rss()
print(json.dumps(out))
"""


def test_memory_a_refresh_frees_goes_back_to_the_system_and_the_launcher_caps_arenas(monkeypatch):
    """What a session's thread frees stays in its malloc arena until trim_memory hands it back (glibc): the
    server's memory follows what it holds, not its peak. `forgescope ui` starts the server with two arenas."""
    import argparse
    import subprocess

    from app import launch
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    out = subprocess.run([sys.executable, "-c", TRIM], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    got = json.loads(out.stdout)
    assert got["trimmed"] is True and got["again"] is False
    assert got["freed"] - got["after"] > 50, got          # of ~180 MiB freed, most pages were wholly free
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    _, env = launch.command(parser.parse_args([]))
    assert env["MALLOC_ARENA_MAX"] == "2"
