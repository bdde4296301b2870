"""A run log published in closed pieces, for run directories on shared filesystems (probes.sharedfs says
when): the writer keeps the live log on node-local storage and a thread publishes what is new into the run
directory every few seconds, as an immutable SQLite file renamed into place. No process ever opens another
host's live database; readers open the published files with immutable=1 (no locks, no journal files).

The run directory, on the shared filesystem:
    run.db              the base: the whole log as of publication `hi` (empty while the run is live,
                        everything once it closed); only ever replaced by rename
    segments/A-B.db     what publications A..B added (rows by writer rowid: a replaced row lives in the
                        later piece). After publication n the two newest pieces of equal length merge
                        (a binary counter), so a run of n publications has at most log2(n)+1 of them; at
                        close the base takes everything and the pieces go. The folder marks the layout.
    live.json           the writer's host, pid and node-local log: a reader on that host reads it live
    heartbeat           as for every live run (probes.runs)
Every piece carries the writer's uid: a run folder started over by another writer is read afresh.
Reading is probes.replica. Nothing here imports torch.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import threading
import uuid
from pathlib import Path

from ._logschema import DB_NAME, LIVE, PUBLICATION, SEGMENTS, create_empty, is_published, parse_segment, segment_name
from .replica import build_replica
from .sharedfs import filesystem_type, host_id, is_network_type, publish_every, staging_root


def copy_into(path: Path, target: Path) -> None:
    """Copy a closed file into a shared folder: written under a temporary name, flushed, renamed into place
    (a reader on any host sees the old file or the whole new one)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(path, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


class Publisher:
    """The writer's side. `prepare` gives the node-local path the RunWriter opens; `start` publishes the base
    and starts the thread; `finish` (at close) publishes the rest and hands the whole log to the base."""

    def __init__(self, shared_db: Path):
        self.shared_dir = shared_db.parent
        key = hashlib.sha1(str(shared_db.absolute()).encode()).hexdigest()[:16]
        self.staging_dir = staging_root() / f"{key}-{os.getpid()}"
        self.local = self.staging_dir / DB_NAME
        self.every = publish_every()
        self.uid = uuid.uuid4().hex
        self.pub = 0                    # publications made (the base holds 0..pub at start)
        self.bounds: dict[int, tuple] = {}
        self.pieces: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._warned = False

    def prepare(self) -> Path:
        """Set up the node-local log: a copy of what this run directory already holds (a run continued under
        its name), or nothing (the RunWriter creates it)."""
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            for leftover in self.staging_dir.iterdir():
                leftover.unlink()
            kind = filesystem_type(self.staging_dir)
            if is_network_type(kind):
                print(f"ForgeScope: the staging folder {self.staging_dir} is on a {kind} filesystem, not on this"
                      f" node's disk; set FORGESCOPE_STAGING_DIR to a node-local folder", file=sys.stderr)
        except OSError as e:
            raise OSError(e.errno, f"the node-local staging folder {self.staging_dir} (FORGESCOPE_STAGING_DIR)"
                                   f" cannot be used: {e.strerror or e}") from e
        shared = self.shared_dir / DB_NAME
        if is_published(self.shared_dir) and shared.is_file():
            info = build_replica(self.shared_dir, self.local)
            self.uid, self.pub = info["uid"], int(info["hi"])
        elif shared.is_file():          # a single-file log from before: carried over whole
            src = sqlite3.connect(f"{shared.absolute().as_uri()}?mode=ro", uri=True)
            dst = sqlite3.connect(self.local)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        return self.local

    def start(self) -> None:
        self._db = sqlite3.connect(self.local, isolation_level=None, check_same_thread=False)
        self.bounds[self.pub] = self._bounds()
        (self.shared_dir / SEGMENTS).mkdir(exist_ok=True)
        # the base first (all there is so far: nothing, or the run continued), then the older pieces go
        self._publish_base()
        for stale in (DB_NAME + "-wal", DB_NAME + "-shm"):     # of a single-file log carried over: now the base's
            with contextlib.suppress(OSError):
                (self.shared_dir / stale).unlink()
        for name in os.listdir(self.shared_dir / SEGMENTS):
            if parse_segment(name):
                with contextlib.suppress(OSError):
                    (self.shared_dir / SEGMENTS / name).unlink()
        write_json(self.shared_dir / LIVE, {"host": host_id(), "pid": os.getpid(), "uid": self.uid,
                                            "staging": str(self.local.absolute())})
        self._thread = threading.Thread(target=self._run, name="forgescope-publish", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.publish()

    def publish(self) -> bool:
        """Publish what is new since the last publication; False when nothing was (or it failed: warned once,
        tried again next time, and the node-local log keeps every step)."""
        with self._lock:
            try:
                return self._publish()
            except Exception as e:      # noqa: BLE001 - ours; training goes on, the next try may work
                self._warn(e)
                return False

    def _publish(self) -> bool:
        prev = self.bounds[self.pub]
        tmp = self.staging_dir / "piece.tmp"
        with contextlib.suppress(OSError):
            tmp.unlink()
        create_empty(tmp, publication=True)
        cur = self._copy(tmp, prev, None)
        if cur == prev:
            tmp.unlink()
            return False
        n = self.pub + 1
        self._stamp(tmp, n, n)
        copy_into(tmp, self.shared_dir / SEGMENTS / segment_name(n, n))
        tmp.unlink()
        self.pub, self.bounds[n] = n, cur
        self.pieces.append((n, n))
        while len(self.pieces) >= 2 and _length(self.pieces[-1]) == _length(self.pieces[-2]):
            (a, _), (_, b) = self.pieces[-2], self.pieces[-1]
            create_empty(tmp, publication=True)
            self._copy(tmp, self.bounds[a - 1], self.bounds[b])
            self._stamp(tmp, a, b)
            copy_into(tmp, self.shared_dir / SEGMENTS / segment_name(a, b))
            tmp.unlink()
            for old in self.pieces[-2:]:
                with contextlib.suppress(OSError):
                    (self.shared_dir / SEGMENTS / segment_name(*old)).unlink()
            self.pieces[-2:] = [(a, b)]
        return True

    def _bounds(self, schema: str = "main") -> tuple:
        """How far each table has been written: the last rowid/id of each, the last step."""
        q = (f"SELECT (SELECT MAX(rowid) FROM {schema}.records), (SELECT MAX(step) FROM {schema}.steps),"
             f" (SELECT MAX(id) FROM {schema}.trees), (SELECT MAX(id) FROM {schema}.findings),"
             f" (SELECT MAX(id) FROM {schema}.layouts), (SELECT MAX(rowid) FROM {schema}.meta)")
        return tuple(-1 if v is None else v for v in self._db.execute(q).fetchone())

    def _copy(self, piece: Path, lo: tuple, hi: tuple | None) -> tuple:
        """Copy the rows written after `lo` (up to `hi`; None: everything now) into the piece, from one
        snapshot of the node-local log; returns the bounds it was taken at."""
        db = self._db
        db.execute("ATTACH ? AS piece", (str(piece),))
        try:
            db.execute("BEGIN")
            try:
                cur = self._bounds() if hi is None else hi
                rec, step, tree, find, _, _ = lo
                db.execute("INSERT INTO piece.records SELECT * FROM records WHERE rowid > ? AND rowid <= ?",
                           (rec, cur[0]))
                db.execute("INSERT INTO piece.steps SELECT * FROM steps WHERE step > ? AND step <= ?",
                           (step, cur[1]))
                # a step written again after its publication (its rows are new, its number is not)
                db.execute("INSERT OR IGNORE INTO piece.steps SELECT * FROM steps WHERE step IN"
                           " (SELECT DISTINCT step FROM piece.records WHERE step <= ?)", (step,))
                db.execute("INSERT INTO piece.trees SELECT * FROM trees WHERE id > ? AND id <= ?", (tree, cur[2]))
                db.execute("INSERT INTO piece.findings SELECT * FROM findings WHERE id > ? AND id <= ?",
                           (find, cur[3]))
                db.execute("INSERT OR REPLACE INTO piece.layouts SELECT * FROM layouts")
                db.execute("INSERT OR REPLACE INTO piece.meta SELECT * FROM meta")
            finally:
                db.execute("COMMIT")
        finally:
            db.execute("DETACH piece")
        return cur

    def _stamp(self, path: Path, lo: int, hi: int) -> None:
        db = sqlite3.connect(path)
        try:
            db.execute(PUBLICATION)
            db.executemany("INSERT OR REPLACE INTO publication VALUES(?, ?)",
                           [("uid", self.uid), ("lo", str(lo)), ("hi", str(hi))])
            db.commit()
        finally:
            db.close()

    def _publish_base(self) -> None:
        """The whole node-local log, as of publication `pub`, as the run directory's run.db."""
        tmp = self.staging_dir / "base.tmp"
        with contextlib.suppress(OSError):
            tmp.unlink()
        self._db.execute("VACUUM INTO ?", (str(tmp),))
        self._stamp(tmp, 0, self.pub)
        copy_into(tmp, self.shared_dir / DB_NAME)
        tmp.unlink()

    def finish(self) -> None:
        """At close (the RunWriter's own connection closed): publish the rest, make the base whole, drop the
        pieces and the node-local log. A failure keeps the node-local log and says where it is."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            try:
                self._publish()
                self._publish_base()
                for piece in self.pieces:
                    with contextlib.suppress(OSError):
                        (self.shared_dir / SEGMENTS / segment_name(*piece)).unlink()
                self.pieces = []
                with contextlib.suppress(OSError):
                    (self.shared_dir / LIVE).unlink()
            except Exception as e:      # noqa: BLE001 - closing never raises for it: the log is kept
                self._warn(e)
                self._db.close()
                return
            self._db.close()
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def _warn(self, e: Exception) -> None:
        if not self._warned:
            self._warned = True
            print(f"ForgeScope: could not publish the run log to {self.shared_dir} ({type(e).__name__}: {e});"
                  f" every step is kept in {self.local}", file=sys.stderr)


def _length(piece: tuple[int, int]) -> int:
    return piece[1] - piece[0] + 1
