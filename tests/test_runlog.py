"""The run log: round trips, incremental reads, concurrent readers, SIGKILLed writers, damaged files."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from probes.runlog import DB_NAME, SCHEMA_VERSION, RunLogError, RunReader, RunWriter
from probes.runs import list_runs

ROOT = Path(__file__).resolve().parent.parent
NAMES = [f"layer{i}.weight" for i in range(200)]


def write_steps(writer, start, stop, names=NAMES):
    for step in range(start, stop):
        writer.write_step(step, {"loss": 1.0 / (step + 1), "step_time_s": 0.01},
                          {"grad_norm": (names, np.arange(len(names), dtype=np.float32) + step)})


def test_a_500_parameter_record_stays_on_its_page(tmp_path):
    # 2,000-byte blobs: in a WITHOUT ROWID table each spilled to an overflow page (about 5.6 KB a step)
    names = [f"layer{i}.weight" for i in range(500)]
    w = RunWriter(tmp_path / DB_NAME)
    write_steps(w, 0, 2000, names)
    w.close()
    size = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith(DB_NAME))
    assert size / 2000 < 2600                    # 2,000 bytes of float32 + the step's scalars and keys
    assert RunReader(tmp_path).series("grad_norm").loc[1999, "layer499.weight"] == 499 + 1999


def test_a_log_made_with_the_earlier_records_table_reads_the_same(tmp_path):
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript("""
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE layouts(id INTEGER PRIMARY KEY, series TEXT NOT NULL, dtype TEXT NOT NULL, names TEXT NOT NULL);
        CREATE TABLE steps(step INTEGER PRIMARY KEY, time REAL NOT NULL);
        CREATE TABLE records(step INTEGER NOT NULL, layout INTEGER NOT NULL, data BLOB NOT NULL,
                             PRIMARY KEY(step, layout)) WITHOUT ROWID;
        CREATE TABLE trees(id INTEGER PRIMARY KEY, step INTEGER NOT NULL, tree TEXT NOT NULL);
        CREATE TABLE findings(id INTEGER PRIMARY KEY, step INTEGER, finding TEXT NOT NULL);
        INSERT INTO meta VALUES('schema_version', '1');""")
    db.close()
    w = RunWriter(tmp_path / DB_NAME)           # a writer continuing it keeps its table
    write_steps(w, 0, 3)
    w.close()
    g = RunReader(tmp_path).series("grad_norm", after=0)
    assert list(g.index) == [1, 2] and g.loc[2, "layer5.weight"] == 7.0


def test_round_trip_scalars_vectors_trees_findings(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    w.set_meta(model="MLP", cadences={"grad_norm": "every step"})
    write_steps(w, 0, 5)
    w.write_tree(0, {"modules": [{"path": ""}]})
    w.write_findings(3, [{"code": "unregistered-module", "severity": "error"}])
    w.close()
    r = RunReader(tmp_path)
    assert r.meta()["model"] == "MLP" and r.meta()["schema_version"] == SCHEMA_VERSION
    s = r.scalars()
    assert list(s.index) == [0, 1, 2, 3, 4] and s["loss"].iloc[3] == 0.25   # scalars keep float64
    g = r.series("grad_norm")
    assert list(g.columns) == NAMES and g.to_numpy().dtype == np.float32
    assert g.loc[4, "layer7.weight"] == 11.0
    assert r.tree() == {"modules": [{"path": ""}]}
    assert r.findings() == [{"code": "unregistered-module", "severity": "error"}]
    assert r.series("no_such_series").empty and r.last_step() == 4 and r.step_count() == 5


def test_names_are_stored_once_and_a_blob_per_step(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    write_steps(w, 0, 50)
    w.close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("SELECT COUNT(*) FROM layouts WHERE series='grad_norm'").fetchone() == (1,)
    (size,) = db.execute("SELECT length(data) FROM records r JOIN layouts l ON r.layout=l.id "
                         "WHERE l.series='grad_norm' LIMIT 1").fetchone()
    assert size == 200 * 4                           # float32, nothing else


def test_incremental_reads_return_only_later_steps(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    write_steps(w, 0, 10)
    r = RunReader(tmp_path)
    assert list(r.series("grad_norm", after=6).index) == [7, 8, 9]
    assert list(r.scalars(after=8).index) == [9]
    write_steps(w, 10, 12)
    assert list(r.scalars(after=9).index) == [10, 11]    # the same reader sees new steps
    assert r.series("grad_norm", after=11).empty


def test_a_changed_parameter_list_gets_a_new_layout(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    write_steps(w, 0, 2, names=["a", "b"])
    write_steps(w, 2, 4, names=["a", "b", "c"])
    frame = RunReader(tmp_path).series("grad_norm")
    assert list(frame.columns) == ["a", "b", "c"]
    assert np.isnan(frame.loc[1, "c"]) and frame.loc[3, "c"] == 5.0


def test_a_reader_never_fails_while_a_writer_runs(tmp_path):
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from probes.runlog import RunWriter
        w = RunWriter(sys.argv[1])
        names = [f"p{{i}}" for i in range(200)]
        for step in range(1500):
            w.write_step(step, {{"loss": float(step)}}, {{"grad_norm": (names, np.full(200, step, np.float32))}})
        w.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / DB_NAME)])
    seen, reads = -1, 0
    reader = None
    while proc.poll() is None or reads == 0:
        if reader is None:
            if not (tmp_path / DB_NAME).exists():
                continue
            try:
                reader = RunReader(tmp_path)
            except RunLogError:       # the writer has not created the schema yet
                continue
        frame = reader.series("grad_norm", after=seen)
        if len(frame):
            assert list(frame.index) == list(range(seen + 1, seen + 1 + len(frame)))   # no gaps, no repeats
            assert (frame.to_numpy() == np.asarray(frame.index)[:, None]).all()      # never half a step
            seen = int(frame.index[-1])
        reads += 1
    assert proc.wait() == 0
    rest = reader.series("grad_norm", after=seen)
    seen = int(rest.index[-1]) if len(rest) else seen
    assert seen == 1499 and reads > 1


def test_a_sigkilled_writer_leaves_a_readable_log(tmp_path):
    """The training process is killed mid-run: every committed step reads back, the log opens cleanly."""
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(ROOT)!r})
        from probes import Probe
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        probe = Probe(model, opt, run_dir=sys.argv[1], run_name="killed", grad_norm=1, update_size=1, activations=1)
        step = 0
        while True:
            opt.zero_grad(); model(torch.randn(4, 8)).pow(2).mean().backward(); opt.step()
            step += 1
            print(step, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    reported = 0
    while reported < 200:
        reported = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    r = RunReader(tmp_path / "killed")
    steps = r.step_count()
    assert steps >= reported and r.last_step() == steps - 1          # at most the step in flight is lost
    assert list(r.scalars().index) == list(range(steps))
    assert len(r.series("grad_norm")) == steps and len(r.series("update_ratio")) == steps
    assert r.meta()["status"] == "running"                            # it never got to say it finished
    assert r.tree() is not None


def test_a_corrupt_file_gives_an_error_naming_it(tmp_path):
    bad = tmp_path / "garbage"
    bad.mkdir()
    (bad / DB_NAME).write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(RunLogError) as err:
        RunReader(bad)
    assert str(bad / DB_NAME) in str(err.value)

    other = tmp_path / "other-tool"
    other.mkdir()
    sqlite3.connect(other / DB_NAME).execute("CREATE TABLE t(x)").connection.commit()
    with pytest.raises(RunLogError, match="other-tool"):
        RunReader(other)

    with pytest.raises(RunLogError, match="no run log"):
        RunReader(tmp_path / "missing")


def test_a_truncated_log_is_reported_by_name(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    write_steps(w, 0, 300)
    w.close()
    data = (tmp_path / DB_NAME).read_bytes()
    (tmp_path / DB_NAME).write_bytes(data[: len(data) // 3])
    with pytest.raises(RunLogError) as err:
        r = RunReader(tmp_path)
        r.series("grad_norm")
        r.scalars()
    assert DB_NAME in str(err.value)


def test_a_newer_schema_is_refused_clearly(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    w.close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    with pytest.raises(RunLogError, match="schema version 99"):
        RunReader(tmp_path)


def test_list_runs_skips_other_files(tmp_path):
    for name in ("b-run", "a-run"):
        RunWriter(tmp_path / name / DB_NAME).close()
        time.sleep(0.01)
    (tmp_path / "notes.txt").write_text("not a run")
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "tensorboard" / "events.out").write_text("x")
    assert [p.name for p in list_runs(tmp_path)] == ["b-run", "a-run"]     # oldest first
    assert list_runs(tmp_path / "nowhere") == []


def test_meta_values_are_json(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    w.set_meta(optimizers=[{"class": "Adam", "lr": 1e-3}], status="running")
    w.set_meta(status="finished")
    w.close()
    raw = dict(sqlite3.connect(tmp_path / DB_NAME).execute("SELECT key, value FROM meta").fetchall())
    assert json.loads(raw["optimizers"]) == [{"class": "Adam", "lr": 1e-3}]
    assert RunReader(tmp_path).meta()["status"] == "finished"


def test_run_status_tells_a_live_run_from_a_killed_one(tmp_path):
    from probes.runs import HEARTBEAT_NAME, STOPPED_AFTER_S, run_status
    w = RunWriter(tmp_path / DB_NAME)
    w.write_step(0, {"loss": 1.0})
    w.close()
    now = time.time()
    assert run_status(tmp_path, {"status": "finished"}) == "finished"
    assert run_status(tmp_path, {"status": "failed"}) == "failed"
    assert run_status(tmp_path, {"status": "running"}, now=now) == "running"
    later = now + STOPPED_AFTER_S + 1
    assert run_status(tmp_path, {"status": "running"}, now=later) == "stopped"      # silent: the writer is gone
    (tmp_path / HEARTBEAT_NAME).touch()
    os.utime(tmp_path / HEARTBEAT_NAME, (later - 1, later - 1))
    assert run_status(tmp_path, {"status": "running"}, now=later) == "running"      # no step, but a heartbeat


def test_reading_a_killed_runs_log_does_not_bring_it_back_to_life(tmp_path):
    """A killed writer leaves its steps in the write-ahead log; the first reader to close checkpoints them
    into the database file, which gets a fresh time. With a heartbeat file (every Probe run), only the
    heartbeat and a non-empty write-ahead log count as signs of life."""
    from probes.runs import HEARTBEAT_NAME, STOPPED_AFTER_S, run_status
    code = ("import sys, time; from probes.runlog import RunWriter; w = RunWriter(sys.argv[1]); "
            "[w.write_step(k, {'loss': 1.0}) for k in range(20)]; open(sys.argv[2], 'w').close(); "
            "print('ok', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / DB_NAME), str(tmp_path / HEARTBEAT_NAME)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ok"
    proc.kill()
    proc.wait(timeout=10)
    old = time.time() - STOPPED_AFTER_S - 5
    for f in tmp_path.iterdir():
        os.utime(f, (old, old))                       # killed a while ago
    assert (tmp_path / (DB_NAME + "-wal")).stat().st_size > 0
    assert run_status(tmp_path, {"status": "running"}) == "stopped"
    with RunReader(tmp_path) as reader:
        assert reader.step_count() == 20              # every step kept
    assert (tmp_path / DB_NAME).stat().st_mtime > old + 10      # the reader's checkpoint touched the file
    assert run_status(tmp_path, {"status": "running"}) == "stopped"


def test_the_heartbeat_beats_until_stopped(tmp_path):
    from probes.runs import HEARTBEAT_NAME, Heartbeat
    beat = Heartbeat(tmp_path, every=0.05)
    path = tmp_path / HEARTBEAT_NAME
    deadline = time.time() + 5
    while not path.exists() and time.time() < deadline:
        time.sleep(0.01)
    os.utime(path, (1.0, 1.0))
    time.sleep(0.3)
    assert path.stat().st_mtime > 1.0                 # touched again
    beat.stop()
    assert not beat._thread.is_alive()
    os.utime(path, (1.0, 1.0))
    time.sleep(0.2)
    assert path.stat().st_mtime == 1.0                # and no more after stop


def test_a_sigkilled_training_script_reads_back_as_stopped_with_its_steps(tmp_path):
    """The live sample killed mid-run (as by the OOM killer): every step it wrote is there, and once its
    heartbeat is silent the run reads as stopped, not as running for ever."""
    from probes.runs import STOPPED_AFTER_S, list_runs, run_status
    proc = subprocess.Popen([sys.executable, "sample_models/train_live.py", "--epochs", "50", "--step-delay", "0.02",
                             "--run-dir", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        steps = 0
        while steps < 20 and time.time() < deadline:
            time.sleep(0.2)
            runs = list_runs(tmp_path)
            if runs:
                with RunReader(runs[-1]) as reader:
                    steps = reader.step_count()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert steps >= 20
    with RunReader(list_runs(tmp_path)[-1]) as reader:
        meta, kept = reader.meta(), reader.step_count()
        assert kept >= steps and reader.scalars()["loss"].notna().sum() == kept
    run = list_runs(tmp_path)[-1]
    assert meta["status"] == "running" and run_status(run, meta) == "running"      # just killed: not yet known
    assert run_status(run, meta, now=time.time() + STOPPED_AFTER_S + 1) == "stopped"
    result = json.loads(subprocess.run([sys.executable, "-m", "probes", "report", str(run), "--json"], cwd=ROOT,
                                       capture_output=True, text=True, timeout=120).stdout)
    assert result["steps"] == kept and result["error"] is None


def test_other_tools_files_in_the_run_directory_are_not_runs(tmp_path):
    """A run directory shared with TensorBoard, Lightning and W&B, a stray note, and another tool's SQLite file
    named run.db (at the top, and in a folder of its own): only our runs are listed, the foreign databases
    are skipped rather than shown as unreadable runs (they are intact, just not ours: nothing to repair), and
    our runs below a foreign run.db are not hidden by it. A damaged log of ours is still listed, by name."""
    from app.data import list_run_summaries
    for name in ("ours-old", "ours-new"):
        w = RunWriter(tmp_path / name / DB_NAME)
        w.set_meta(model="Net", status="finished", started=time.time())
        w.write_step(0, {"loss": 1.0})
        w.close()
        time.sleep(0.01)
    (tmp_path / "events.out.tfevents.1700000000.host.4242.0").write_bytes(b"\x18\x00\x00\x00brain.Event:2" * 8)
    lightning = tmp_path / "lightning_logs" / "version_0"
    (lightning / "checkpoints").mkdir(parents=True)
    (lightning / "hparams.yaml").write_text("lr: 0.001\n")
    (lightning / "events.out.tfevents.1700000001.host.4242.0").write_bytes(b"\x00" * 64)
    (lightning / "checkpoints" / "epoch=0-step=10.ckpt").write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    wandb = tmp_path / "wandb" / "run-20240101_000000-abc123"
    (wandb / "files").mkdir(parents=True)
    (wandb / "files" / "config.yaml").write_text("wandb_version: 1\n")
    (wandb / "run-abc123.wandb").write_bytes(b":W&B" + b"\x00" * 60)
    (tmp_path / "notes.txt").write_text("lr 1e-3 diverged, try 3e-4")
    for db_path, schema in ((tmp_path / DB_NAME, "CREATE TABLE runs(id INTEGER PRIMARY KEY, name TEXT);"
                                                 "CREATE TABLE metrics(run INTEGER, key TEXT, value REAL);"),
                            (tmp_path / "tracker" / DB_NAME, "CREATE TABLE meta(run_id TEXT, created REAL);")):
        db_path.parent.mkdir(exist_ok=True)
        db = sqlite3.connect(db_path)
        db.executescript(schema)
        db.commit()
        db.close()

    assert [p.name for p in list_runs(tmp_path)] == ["ours-old", "ours-new"]
    summaries = list_run_summaries(tmp_path)
    assert [(s.name, s.model, s.status, s.steps) for s in summaries] == [("ours-new", "Net", "finished", 1),
                                                                         ("ours-old", "Net", "finished", 1)]
    with pytest.raises(RunLogError, match="not a readable ForgeScope run log"):     # named explicitly: said so
        RunReader(tmp_path / "tracker")

    damaged = tmp_path / "ours-damaged" / DB_NAME                  # one of ours, cut short by a failing copy
    w = RunWriter(damaged)
    write_steps(w, 0, 300)
    w.close()
    damaged.write_bytes(damaged.read_bytes()[:20_000])
    assert "ours-damaged" in [p.name for p in list_runs(tmp_path)]
    (bad,) = [s for s in list_run_summaries(tmp_path) if s.name == "ours-damaged"]
    assert bad.status == "unreadable" and str(damaged) in bad.error
