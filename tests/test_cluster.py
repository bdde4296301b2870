"""Run logs on a shared filesystem: written node-locally and published in closed pieces (probes.segments),
read on any host without opening another host's live database (probes.replica); two torchrun "nodes" on
one machine (each with its own staging folder and host identity) writing one run; a node killed mid-run.

Hosts are told apart by FORGESCOPE_HOST_ID here: every process in these tests is on one machine, and each
plays the host its variable names."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from app.data import load_run
from probes import sharedfs
from probes.report import report_run
from probes.runlog import RunReader, RunWriter
from probes.runs import STOPPED_AFTER_S, rank_runs, run_status

ROOT = Path(__file__).resolve().parent.parent
NAMES = [f"layer{i}.weight" for i in range(6)]

MOUNTS = r"""sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
server:/export/home /home nfs4 rw,vers=4.2 0 0
/dev/sdb1 /home/alice/local\040disk ext4 rw 0 0
10.0.0.5@tcp:/scratch /scratch lustre rw 0 0
sshfs#me@box: /mnt/box fuse.sshfs rw 0 0
/dev/sdc1 /mnt/usb fuseblk rw 0 0
"""


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    """This process writes as host "node1" with its own staging folder; returns a function that makes it
    read as another host."""
    monkeypatch.setenv("FORGESCOPE_STAGING_DIR", str(tmp_path / "staging-node1"))
    monkeypatch.setenv("FORGESCOPE_HOST_ID", "node1")
    monkeypatch.setenv("FORGESCOPE_PUBLISH_EVERY_S", "3600")       # published when the test says so

    def be(host: str) -> None:
        monkeypatch.setenv("FORGESCOPE_HOST_ID", host)
    return be


def test_the_filesystem_of_a_run_directory_is_read_from_the_mount_table(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    kinds = {p: sharedfs.filesystem_type(p, str(mounts)) for p in
             ("/home/alice/runs", "/home/alice/local disk/runs", "/scratch/u/runs/x", "/mnt/box/r", "/mnt/usb/r",
              "/tmp/runs", "/homework")}
    assert kinds == {"/home/alice/runs": "nfs4", "/home/alice/local disk/runs": "ext4",
                     "/scratch/u/runs/x": "lustre", "/mnt/box/r": "fuse.sshfs", "/mnt/usb/r": "fuseblk",
                     "/tmp/runs": "ext4", "/homework": "ext4"}
    assert [k for k in kinds.values() if sharedfs.is_network_type(k)] == ["nfs4", "lustre", "fuse.sshfs"]
    monkeypatch.setenv("FORGESCOPE_SHARED_FS", "1")
    assert sharedfs.shared_mode(tmp_path)               # forced on a local disk
    monkeypatch.setenv("FORGESCOPE_SHARED_FS", "0")
    assert not sharedfs.shared_mode(tmp_path)
    monkeypatch.delenv("FORGESCOPE_SHARED_FS")
    assert sharedfs.shared_mode(tmp_path) is sharedfs.is_network_type(sharedfs.filesystem_type(tmp_path))


def write_steps(writer: RunWriter, steps, rng) -> None:
    for step in steps:
        writer.write_step(step, {"loss": float(1.0 / (step + 1)), "step_time_s": 0.01},
                          {"grad_norm": (NAMES, rng.uniform(0, 1, len(NAMES)))})
        if step % 7 == 0:
            writer.write_findings(step, [{"code": "demo", "step": step}])


def contents(path: Path) -> dict:
    with RunReader(path) as r:
        return {"meta": r.meta(), "scalars": r.scalars().drop(columns="time"), "grad": r.series("grad_norm"),
                "trees": r.trees(), "findings": r.findings()}


def test_a_published_log_reads_on_another_host_as_the_same_log_written_to_one_file(tmp_path, hosts):
    shared, local = tmp_path / "shared" / "run" / "run.db", tmp_path / "local" / "run" / "run.db"
    writers = [RunWriter(shared, shared=False), RunWriter(local, shared=False)]
    writers[0].close()                          # a single-file log, continued in the published layout
    writers[0] = RunWriter(shared, shared=True)
    assert writers[0].local_path.is_relative_to(tmp_path / "staging-node1")
    rngs = [np.random.default_rng(0), np.random.default_rng(0)]
    for w in writers:
        w.set_meta(status="running", model="Net")
        w.write_tree(0, {"name": "Net", "children": []})
    seen = []
    for chunk in range(37):                                  # 37 publications of 3 steps each
        for w, rng in zip(writers, rngs):
            write_steps(w, range(chunk * 3, chunk * 3 + 3), rng)
        assert writers[0].publish()
        hosts("login")
        with RunReader(shared.parent) as r:
            seen.append(r.step_count())
        hosts("node1")
        pieces = sorted(os.listdir(shared.parent / "segments"))
        assert len(pieces) == bin(chunk + 1).count("1")     # merged as a binary counter: <= log2(n) + 1
    assert seen == [3 * (i + 1) for i in range(37)]          # every publication read, as it came
    assert not writers[0].publish()                          # nothing new: no piece
    for w in writers:
        w.set_meta(status="finished")
        w.close()
    hosts("login")
    published, plain = contents(shared.parent), contents(local.parent)
    assert published["meta"] == plain["meta"] and published["trees"] == plain["trees"]
    assert published["findings"] == plain["findings"] and len(plain["findings"]) == 16
    assert published["scalars"].equals(plain["scalars"]) and published["grad"].equals(plain["grad"])
    # closed: one whole log and no pieces; nothing left on the node-local disk
    assert sorted(os.listdir(shared.parent)) == ["run.db", "segments"] and not os.listdir(shared.parent / "segments")
    assert not writers[0].local_path.exists()


def test_on_the_writers_host_the_live_log_is_read_before_it_is_published(tmp_path, hosts):
    run = tmp_path / "shared" / "run"
    w = RunWriter(run / "run.db", shared=True)
    write_steps(w, range(10), np.random.default_rng(1))
    with RunReader(run) as r:
        assert r.step_count() == 10                         # this host: the live node-local log
    hosts("login")
    with RunReader(run) as r:
        assert r.step_count() == 0                          # elsewhere: what is published (nothing yet)
    hosts("node1")
    w.publish()
    hosts("login")
    with RunReader(run) as r:
        assert r.step_count() == 10
    w.close()


def test_a_run_continued_under_its_name_keeps_its_published_steps(tmp_path, hosts):
    run = tmp_path / "shared" / "run"
    w = RunWriter(run / "run.db", shared=True)
    write_steps(w, range(5), np.random.default_rng(2))
    w.close()
    hosts("login")
    assert contents(run)["scalars"].index.tolist() == list(range(5))
    hosts("node2")                      # continued on another node, while a reader elsewhere holds a replica
    w = RunWriter(run / "run.db", shared=True)
    write_steps(w, range(5, 9), np.random.default_rng(3))
    w.publish()
    hosts("login")
    assert contents(run)["scalars"].index.tolist() == list(range(9))
    hosts("node2")
    w.close()


KILLED_WRITER = r"""
import os, signal, sys
from probes.runlog import RunWriter
w = RunWriter(sys.argv[1] + "/run.db")
w.set_meta(status="running")
for s in range(40):
    w.write_step(s, {"loss": 1.0})
    if s == 24:
        w.publish()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_mid_run_loses_only_what_it_had_not_published(tmp_path, hosts):
    run = tmp_path / "shared" / "run"
    env = {**os.environ, "FORGESCOPE_SHARED_FS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(run)], env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    hosts("login")
    with RunReader(run) as r:
        assert r.step_count() == 25 and r.meta()["status"] == "running"     # the last publication
        assert run_status(run, r.meta(), now=time.time() + STOPPED_AFTER_S + 1) == "stopped"
    hosts("node1")
    with RunReader(run) as r:                   # the killed writer's own host still has every step
        assert r.step_count() == 40


READER = r"""
import json, os, sys, time
staging, run, out, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
connects, held = [], []
def audit(event, args):
    if event == "sqlite3.connect":
        connects.append(str(args[0]))
sys.addaudithook(audit)
from app.data import extend_run, list_run_summaries, live_numbers, load_run, log_version
from probes.report import report_run
from probes.runlog import RunReader
def open_files():
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(staging):
            held.append(target)
view, steps, t0 = None, [], time.time()
while time.time() - t0 < seconds or not steps or steps[-1] < 400:
    log_version(run)
    view = load_run(run) if view is None else extend_run(view)
    list_run_summaries(os.path.dirname(run))
    live_numbers(run)
    with RunReader(run) as r:
        steps.append(r.step_count())
        open_files()
    report_run(run)
    open_files()
    if time.time() - t0 > 120:
        break
view = extend_run(view)          # the steps published since this round's extend
open_files()
json.dump({"connects": connects, "held": held, "steps": steps, "view": len(view.scalars)}, open(out, "w"))
"""

LIVE_WRITER = r"""
import sys, time
from probes.runlog import RunWriter
w = RunWriter(sys.argv[1] + "/run.db")
w.set_meta(status="running", model="Net", started=time.time())
names = [f"p{i}" for i in range(20)]
for s in range(400):
    w.write_step(s, {"loss": 1.0 / (s + 1), "step_time_s": 0.01}, {"grad_norm": (names, [0.1] * 20)})
    time.sleep(0.01)
w.set_meta(status="finished")
w.close()
"""


def test_no_reader_ever_opens_a_live_log_written_on_another_host(tmp_path):
    """A writer on host node1 and the dashboard's and report's readers on host login, both on one
    filesystem: the readers open SQLite files only in their own replica folder (audited), never hold a file
    of node1's staging folder open, and no lock or journal file (-wal, -shm, -journal) is ever made in the
    shared run directory, while the run is written and after it closed."""
    shared, staging = tmp_path / "shared", tmp_path / "staging-node1"
    run = shared / "run"
    base = {**os.environ, "FORGESCOPE_SHARED_FS": "1", "PYTHONPATH": str(ROOT), "FORGESCOPE_PUBLISH_EVERY_S": "0.3"}
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(run)], cwd=ROOT,
                              env={**base, "FORGESCOPE_HOST_ID": "node1", "FORGESCOPE_STAGING_DIR": str(staging)})
    deadline = time.time() + 60
    while not (run / "run.db").exists() and time.time() < deadline:
        time.sleep(0.05)
    out = tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(staging), str(run), str(out), "3"], cwd=ROOT,
                              env={**base, "FORGESCOPE_HOST_ID": "login",
                                   "FORGESCOPE_STAGING_DIR": str(tmp_path / "staging-login")})
    lock_files = set()
    while reader.poll() is None and time.time() < deadline + 120:
        for folder, _, files in os.walk(shared):
            lock_files.update(f for f in files if f.endswith(("-wal", "-shm", "-journal")))
        time.sleep(0.02)
    assert writer.wait(timeout=60) == 0 and reader.wait(timeout=60) == 0
    got = json.loads(out.read_text())
    assert lock_files == set()
    assert got["held"] == []
    assert got["connects"] and not [c for c in got["connects"] if str(staging) in c or str(shared) in c]
    assert all("forgescope-replicas-" in c for c in got["connects"])
    assert got["steps"][-1] == 400 and got["view"] == 400
    assert len(set(got["steps"])) > 2                       # it read the run while it grew, more than once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(tmp_path: Path, *args: str, run_name: str = "two") -> list[subprocess.Popen]:
    """`torchrun --nnodes=2 --nproc_per_node=2`, one launcher per node on this machine, rendezvous on
    127.0.0.1; each node has its own staging folder and host identity, the run directory is shared."""
    port = free_port()
    procs = []
    for node in (0, 1):
        env = {**os.environ, "FORGESCOPE_SHARED_FS": "1", "FORGESCOPE_HOST_ID": f"node{node}",
               "FORGESCOPE_STAGING_DIR": str(tmp_path / f"staging-node{node}"), "FORGESCOPE_PUBLISH_EVERY_S": "0.3",
               "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=2",
             f"--node_rank={node}", "--master_addr=127.0.0.1", f"--master_port={port}",
             "sample_models/train_ddp.py", "--run-dir", str(tmp_path / "shared"), "--run-name", run_name, *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True))
    return procs


def test_two_nodes_write_one_run_and_report_sees_every_rank_and_step(tmp_path, monkeypatch):
    procs = two_nodes(tmp_path, "--epochs", "1", "--bug")
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    run = tmp_path / "shared" / "two"
    monkeypatch.setenv("FORGESCOPE_HOST_ID", "login")
    ranks = rank_runs(run)
    assert sorted(ranks) == [0, 1, 2, 3]
    for rank, path in ranks.items():
        with RunReader(path) as r:
            meta = r.meta()
            assert (meta["rank"], meta["world_size"], meta["status"]) == (rank, 4, "finished")
            assert r.step_count() == 2048 // 4 // 32                # every step of every rank
    result = report_run(run)
    assert result["ranks"] == 4 and result["error"] is None
    with RunReader(run) as r:   # rank 0 did not compare the ranks at its close: node 1 had not published all
        assert "ranks-out-of-sync" not in [f["code"] for f in r.findings()]
    raised = [f for f in result["findings"] if f["severity"] != "info"]
    assert [f["code"] for f in raised] == ["ranks-out-of-sync"], [(f["code"], f["title"]) for f in raised]
    found = raised[0]                           # rank 0 (node 0) against the ranks of node 1
    assert {2, 3} <= set(found["evidence"]["ranks"])
    view = load_run(run)                        # the dashboard's view: every rank of both nodes, every step
    assert sorted(view.ranks) == [0, 1, 2, 3] and {len(s) for s in view.ranks.values()} == {16}
    assert "ranks-out-of-sync" in [f["code"] for f in view.findings]
    for node in (0, 1):                         # closed: nothing left in either node's staging folder
        assert not any(p.is_file() for p in (tmp_path / f"staging-node{node}").rglob("*"))


def kill_node(launcher: subprocess.Popen) -> None:
    """SIGKILL a node: its launcher and every process under it (the ranks run in sessions of their own)."""
    family = [launcher.pid, *(c.pid for c in psutil.Process(launcher.pid).children(recursive=True))]
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    launcher.wait(timeout=30)


def test_a_node_killed_mid_run_reads_as_stopped_with_what_it_published(tmp_path, monkeypatch):
    procs = two_nodes(tmp_path, "--epochs", "20", "--step-delay", "0.05", run_name="killed")
    run = tmp_path / "shared" / "killed"
    deadline = time.time() + 240
    monkeypatch.setenv("FORGESCOPE_HOST_ID", "login")
    while time.time() < deadline:               # until node 1's ranks have published some steps
        try:
            with RunReader(run / "rank3") as r:
                if r.step_count() >= 20:
                    break
        except Exception:       # noqa: BLE001 - not there yet
            pass
        time.sleep(0.2)
    kill_node(procs[1])
    try:
        procs[0].communicate(timeout=120)       # node 0 fails when its peers go
    except subprocess.TimeoutExpired:
        kill_node(procs[0])
    later = time.time() + STOPPED_AFTER_S + 1
    for rank in (2, 3):
        with RunReader(run / f"rank{rank}") as r:
            meta, published = r.meta(), r.step_count()
        assert meta["status"] == "running" and run_status(run / f"rank{rank}", meta, now=later) == "stopped"
        monkeypatch.setenv("FORGESCOPE_HOST_ID", "node1")
        with RunReader(run / f"rank{rank}") as r:           # node 1 itself still holds every step written
            written = r.step_count()
        monkeypatch.setenv("FORGESCOPE_HOST_ID", "login")
        assert 20 <= published <= written < 20 * 16
    for rank in (0, 1):         # node 0's ranks failed when their peers vanished, or their launcher ended them
        with RunReader(run / ("rank1" if rank else "")) as r:
            assert run_status(run / ("rank1" if rank else ""), r.meta(), now=later) in ("failed", "stopped")
    assert report_run(run)["ranks"] == 4


def test_the_run_list_follows_a_shared_run_directory_by_listing_it(tmp_path, monkeypatch):
    """inotify hears nothing another host writes over NFS: on a shared filesystem the dashboard's run watch
    lists the run directory instead, and sees a run a writer elsewhere publishes."""
    from app.watch import RunsWatch
    monkeypatch.setenv("FORGESCOPE_SHARED_FS", "1")
    monkeypatch.setattr(RunsWatch, "POLL_S", 0.1)
    watch = RunsWatch(tmp_path)
    try:
        assert watch._observer is None
        writer = RunWriter(tmp_path / "from-node3" / "run.db")
        deadline = time.monotonic() + 10
        while not watch._seen.get("from-node3") and time.monotonic() < deadline:    # the folder, its log
            time.sleep(0.05)
        assert watch.newest == "from-node3" and watch.version in (1, 2)
        seen = watch.version
        for k in range(50):
            writer.write_step(k, {"loss": 1.0})
        writer.publish()
        time.sleep(0.5)
        assert watch.version == seen            # its steps and pieces raise nothing
        writer.close()
    finally:
        watch.stop()
