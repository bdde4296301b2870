"""Reading a run log published in pieces (probes.segments), from any host.

On the writer's own host (live.json names it) a reader opens the writer's node-local log: live, as for a
single-file run. On any other host it reads a replica: a private SQLite file on local disk that takes each
new published piece in turn (opened with immutable=1: no lock, no journal, nothing written beside it). A
piece that vanishes while it is read (merged into a bigger one meanwhile) is taken on the next refresh.
Nothing here imports torch.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

from ._logschema import DB_NAME, LIVE, SEGMENTS, TABLES, create_empty, parse_segment, read_publication, segment_name
from .sharedfs import host_id

_lock = threading.Lock()
_replicas: dict[str, "_Replica"] = {}
_root: Path | None = None


def live_log(run_dir: Path) -> Path | None:
    """The writer's node-local log, when the writer is (or was) on this host and the log is still there."""
    try:
        info = json.loads((run_dir / LIVE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("host") != host_id():
        return None
    path = Path(str(info.get("staging", "")))
    return path if path.is_absolute() and path.is_file() else None


def replica_for(run_dir: Path) -> Path:
    """This process's replica of a published run, brought up to date with what is published now."""
    global _root
    key = str(Path(run_dir).absolute())
    with _lock:
        replica = _replicas.get(key)
        if replica is None:
            if _root is None:
                _root = Path(tempfile.mkdtemp(prefix="forgescope-replicas-"))
                atexit.register(shutil.rmtree, _root, True)
            name = hashlib.sha1(key.encode()).hexdigest()[:16] + ".db"
            replica = _replicas[key] = _Replica(Path(run_dir), _root / name)
    replica.refresh()
    return replica.path


def build_replica(run_dir: Path, path: Path) -> dict[str, str]:
    """A replica written to `path` (a writer continuing a published run starts from it); its publication."""
    replica = _Replica(Path(run_dir), path)
    replica.refresh()
    replica.close()
    return {"uid": replica.uid or "", "hi": str(replica.hi)}


def version(run_dir: Path) -> tuple:
    """Changes when what a reader of this published run sees changes (a cache key): the base, the pieces'
    folder, and on the writer's host its live log."""
    parts = []
    live = live_log(run_dir)
    for p in ([live, live.with_name(live.name + "-wal")] if live else []) + [run_dir / DB_NAME, run_dir / SEGMENTS]:
        try:
            st = os.stat(p)
            parts.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            parts.append(None)
    return tuple(parts)


class _Replica:
    def __init__(self, run_dir: Path, path: Path):
        self.run_dir, self.path = run_dir, path
        self.lock = threading.Lock()
        self.base_key: tuple | None = None
        self.uid: str | None = None
        self.hi = 0
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            if not self.path.exists():
                create_empty(self.path, publication=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, uri=True, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")      # a private copy: rebuilt if lost
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _reset(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.path}{suffix}")
        self.base_key, self.uid, self.hi = None, None, 0

    def refresh(self) -> None:
        with self.lock:
            if not self._refresh():         # the run folder was started over by another writer
                self._reset()
                self._refresh()

    def _refresh(self) -> bool:
        db = self._open()
        base = self.run_dir / DB_NAME
        try:
            st = os.stat(base)
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        if key is not None and key != self.base_key:
            got = self._ingest(db, base, base=True)
            if got == "other":
                return False
            if got in ("ok", "old"):
                self.base_key = key
        try:
            pieces = sorted(p for p in map(parse_segment, os.listdir(self.run_dir / SEGMENTS)) if p)
        except OSError:
            pieces = []
        skipped: set[tuple[int, int]] = set()
        while True:
            nxt = self.hi + 1
            covering = [p for p in pieces if p[0] <= nxt <= p[1] and p not in skipped]
            if not covering:
                return True
            piece = max(covering, key=lambda p: (p[1], p[0]))      # the furthest, then the smallest
            got = self._ingest(db, self.run_dir / SEGMENTS / segment_name(*piece), base=False)
            if got == "gone":
                return True
            if got == "other":
                skipped.add(piece)          # a stale piece of another writer's log: not ours

    def _ingest(self, db: sqlite3.Connection, path: Path, base: bool) -> str:
        """Take one published file into the replica: ok | gone (vanished or unreadable now) | other (another
        writer's) | old (nothing new in it)."""
        try:
            db.execute("ATTACH ? AS pub", (f"{path.absolute().as_uri()}?mode=ro&immutable=1",))
        except sqlite3.Error:
            return "gone"
        try:
            info = read_publication(db, "pub")
            uid, hi = info.get("uid", ""), int(info.get("hi", 0))
            if self.uid is not None and uid != self.uid:
                return "other"
            if self.uid is not None and hi <= self.hi and not (base and self.base_key is None):
                return "old"
            db.execute("BEGIN")
            try:
                for table in TABLES:        # writer rowids and ids: taking a piece twice changes nothing
                    db.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM pub.{table}")
                self.uid, self.hi = uid, max(self.hi, hi)
                db.executemany("INSERT OR REPLACE INTO publication VALUES(?, ?)",
                               [("uid", self.uid), ("hi", str(self.hi))])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return "ok"
        except sqlite3.DatabaseError:
            return "gone"
        finally:
            db.execute("DETACH pub")
