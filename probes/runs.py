"""The runs on disk: which folders hold our run logs (and not another tool's SQLite file), a rank's own log
under torch.distributed, and whether a run is still live (its writer refreshes a heartbeat file).

Nothing here imports torch: the dashboard lists runs without it.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from ._logschema import SEGMENTS
from .runlog import DB_NAME


HEARTBEAT_NAME = "heartbeat"
HEARTBEAT_EVERY_S = 5.0     # a live writer touches the heartbeat file this often, steps or not
STOPPED_AFTER_S = 30.0      # never closed and silent (no step, no heartbeat) this long: the process is gone
                            # (killed, out of memory, power loss); 6 missed beats, so a busy machine is not it


class Heartbeat:
    """A daemon thread that touches <run>/heartbeat every HEARTBEAT_EVERY_S while a run is open, so a long
    validation pass or a slow first step still reads as running. It only sets a file's time: it never waits
    on the run log's lock and never raises into the training process."""

    def __init__(self, run_path: str | os.PathLike, every: float = HEARTBEAT_EVERY_S):
        self.path = Path(run_path) / HEARTBEAT_NAME
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="forgescope-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while True:
            try:
                self.path.touch()
            except OSError:
                pass            # a full or vanished disk: the run log's own writes report that
            if self._stop.wait(self.every):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.every)


def run_status(run_path: str | os.PathLike, meta: Mapping[str, Any], now: float | None = None) -> str:
    """finished | failed | running | stopped: a run never closed whose writer has been silent (no step and
    no heartbeat) for STOPPED_AFTER_S is stopped — its process is gone, and every step it wrote is kept."""
    status = meta.get("status") or "running"
    if status != "running":
        return str(status)
    now = time.time() if now is None else now
    root = Path(run_path)
    # signs of life: the heartbeat, and the write-ahead log the writer commits steps to. The database
    # file itself only counts for a log written without a heartbeat (a bare RunWriter): a reader that
    # opens a killed run's log checkpoints it on close and so gives the file a fresh time.
    # A log published in pieces on a shared filesystem (probes.segments) shows life in its pieces' folder.
    beating = (root / HEARTBEAT_NAME).exists()
    times = []
    for name in (HEARTBEAT_NAME, DB_NAME + "-wal", SEGMENTS) if beating else (DB_NAME, DB_NAME + "-wal", SEGMENTS):
        try:
            st = os.stat(root / name)
        except OSError:
            continue
        if st.st_size or name == HEARTBEAT_NAME:       # an empty log is one a reader just opened
            times.append(st.st_mtime)
    return "running" if times and now - max(times) < STOPPED_AFTER_S else "stopped"


def rank_runs(run_path: str | os.PathLike) -> dict[int, Path]:
    """The per-rank logs of a torch.distributed run: {0: run_path, r: run_path/rank<r>}; {} for a run
    written by one process (rank 0 alone is not a multi-rank run)."""
    root = Path(run_path)
    ranks = {}
    for sub in root.glob("rank*"):
        if sub.name[4:].isdigit() and int(sub.name[4:]) > 0 and (sub / DB_NAME).is_file():
            ranks[int(sub.name[4:])] = sub
    if not ranks:
        return {}
    return {0: root, **dict(sorted(ranks.items()))} if (root / DB_NAME).is_file() else dict(sorted(ranks.items()))


# how every run log's first page starts its schema (written by RunWriter._create, never changed after)
_OUR_SCHEMA = b"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def is_foreign(db_path: str | os.PathLike) -> bool:
    """Whether a file named run.db is another tool's SQLite database (no ForgeScope schema): listings skip
    it. A file SQLite cannot read at all is not foreign: it may be one of ours, damaged (a truncated copy,
    a disk that failed), and is listed so that its reader names it and says why."""
    try:
        with open(db_path, "rb") as f:
            if _OUR_SCHEMA in f.read(4096):     # ours (intact or not): the cheap answer for every real run
                return False
    except OSError:
        return False
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return False
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            return True
        return db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() is None
    except sqlite3.OperationalError as e:     # a meta table of another shape: another tool's
        return "no such column" in str(e)
    except sqlite3.Error:
        return False
    finally:
        db.close()


def list_runs(run_dir: str | os.PathLike) -> list[Path]:
    """The run directories (holding a run.db) directly under run_dir, oldest first. Another tool's files
    (TensorBoard events, lightning_logs/, wandb/, an SQLite database of its own named run.db) are skipped."""
    root = Path(run_dir)
    if (root / DB_NAME).is_file() and not is_foreign(root / DB_NAME):
        return [root]
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / DB_NAME).is_file() and not is_foreign(p / DB_NAME)]
    return sorted(runs, key=lambda p: ((p / DB_NAME).stat().st_mtime, p.name))
