"""The run log: one SQLite database (WAL mode) per run, written by one process, read by any.

Layout of a run directory:  <run_dir>/<run name>/run.db  (+ run.db-wal, run.db-shm while open, and
a `heartbeat` file whose modification time a live writer refreshes every few seconds). Under
torch.distributed, rank 0 writes that log and rank r writes <run name>/rank<r>/run.db (probes.runs.rank_runs).

A step is one transaction, so a writer killed at any point loses at most the step it was writing.
Per-parameter and per-module statistics are stored as one float32 blob per (step, series); the names
that give the blob's positions meaning live once in `layouts`, so a 200-parameter step costs about
800 bytes per series instead of 200 rows. `records` is a rowid table: a row of up to ~4 KB stays on its
page (in a WITHOUT ROWID table, as earlier logs were made, anything over ~1 KB spilled to a page of its
own, 2.5x the bytes on disk); both read the same.

Nothing here imports torch: the dashboard reads run logs without it.
"""
from __future__ import annotations

import array
import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import replica, segments, sharedfs
from ._logschema import DB_NAME, SCHEMA_VERSION, Transaction, create_empty, init_schema

__all__ = ["DB_NAME", "SCHEMA_VERSION", "RunLogError", "RunReader", "RunWriter"]

# float32 keeps per-parameter vectors compact; per-step scalars (loss, times, bytes) keep float64.
_DTYPES = {"f4": np.float32, "f8": np.float64}


class RunLogError(Exception):
    """A run log that cannot be read or written; the message names the file."""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


class RunWriter:
    """Appends steps to a run log. One writer per run; not thread-safe (the Probe calls it from one place)."""

    def __init__(self, path: str | os.PathLike, shared: bool | None = None):
        """shared: publish the log in pieces (probes.segments) rather than keep one live file in the run
        directory; by default where the run directory is on a network or parallel filesystem, or
        FORGESCOPE_SHARED_FS=1 (probes.sharedfs)."""
        self.path = Path(path)
        made = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._publisher = None
        self._db = None
        try:
            local = self.path
            if sharedfs.shared_mode(self.path.parent) if shared is None else shared:
                self._publisher = segments.Publisher(self.path)
                local = self._publisher.prepare()
            if not local.exists():
                create_empty(local)
            self._db = sqlite3.connect(local, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed (it is in the WAL file);
            # only an OS crash or power loss can drop the last commits. FULL would fsync every step.
            self._db.execute("PRAGMA synchronous=NORMAL")
            init_schema(self._db)
            if self._publisher is not None:
                self._publisher.start()
        except (sqlite3.DatabaseError, OSError) as e:
            if self._db is not None:
                self._db.close()
            if made:        # a full disk: leave no empty run folder behind (listings and links would show it)
                with contextlib.suppress(OSError):
                    self.path.parent.rmdir()
            raise _write_error(self.path, e) from e
        self.local_path = local     # where the live log is: the run directory, or node-local when published
        self._layouts: dict[tuple, int] = {
            (series, dtype, tuple(json.loads(names))): lid
            for lid, series, dtype, names in self._db.execute("SELECT id, series, dtype, names FROM layouts")
        }

    # -- metadata ---------------------------------------------------------------------------------
    def set_meta(self, **items: Any) -> None:
        with self._writing(), self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES(?, ?)", [(k, _json(v)) for k, v in items.items()])

    # -- steps ------------------------------------------------------------------------------------
    def write_step(self, step: int, scalars: Mapping[str, float],
                   vectors: Mapping[str, tuple[Sequence[str], Any]] = {},
                   tree: Mapping | None = None, findings: Iterable[Mapping] = ()) -> None:
        """Write one step atomically.

        scalars: name -> float (stored together as float64).
        vectors: series -> (names, values) with values a float sequence/array the length of names
                 (stored as float32).
        """
        try:        # what _writing() does, without a generator to set up on every step
            self._write_step(step, scalars, vectors, tree, findings)
        except sqlite3.Error as e:
            raise _write_error(self.path, e) from e

    def _write_step(self, step, scalars, vectors, tree, findings) -> None:
        rows = []
        if scalars:
            names = tuple(scalars)
            rows.append((step, self._layout("scalars", "f8", names), _f8_bytes([scalars[n] for n in names])))
        for series, (names, values) in vectors.items():
            rows.append((step, self._layout(series, "f4", tuple(names)),
                         np.asarray(values, dtype=np.float32).tobytes()))
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO steps VALUES(?, ?)", (step, time.time()))
            self._db.executemany("INSERT OR REPLACE INTO records VALUES(?, ?, ?)", rows)
            if tree is not None:
                self._db.execute("INSERT INTO trees(step, tree) VALUES(?, ?)", (step, _json(tree)))
            self._write_findings(step, findings)

    def write_tree(self, step: int, tree: Mapping) -> None:
        with self._writing(), self._tx():
            self._db.execute("INSERT INTO trees(step, tree) VALUES(?, ?)", (step, _json(tree)))

    def write_findings(self, step: int | None, findings: Iterable[Mapping]) -> None:
        with self._writing(), self._tx():
            self._write_findings(step, findings)

    def _write_findings(self, step, findings):
        rows = [(step, _json(f)) for f in findings]
        if rows:            # most steps have none: no statement to run
            self._db.executemany("INSERT INTO findings(step, finding) VALUES(?, ?)", rows)

    def publish(self) -> bool:
        """Publish what is new now, not at the next interval (a log published in pieces only; see
        probes.segments): True when something was."""
        return self._publisher.publish() if self._publisher is not None else False

    def close(self) -> None:
        """Close the log; a published one publishes the rest first (a failure there is said, and the
        node-local log kept: nothing is lost, and closing never raises for it)."""
        if self._db is not None:
            self._db.close()
            self._db = None
            if self._publisher is not None:
                self._publisher.finish()

    # -- internals --------------------------------------------------------------------------------
    def _layout(self, series: str, dtype: str, names: tuple) -> int:
        key = (series, dtype, names)
        lid = self._layouts.get(key)
        if lid is None:
            cur = self._db.execute("INSERT INTO layouts(series, dtype, names) VALUES(?, ?, ?)",
                                   (series, dtype, _json(list(names))))
            lid = self._layouts[key] = cur.lastrowid
        return lid

    def _tx(self):
        return Transaction(self._db)

    @contextlib.contextmanager
    def _writing(self):
        """A failed write (a full disk, a vanished file) raises RunLogError naming the log."""
        try:
            yield
        except sqlite3.Error as e:
            raise _write_error(self.path, e) from e


def _f8_bytes(values: list) -> bytes:
    """np.asarray(values, dtype=np.float64).tobytes(), by array.array when every value is a plain float (a
    step's scalars are): the same bytes, in a third of the time numpy takes to set up a small array."""
    if all(type(v) is float for v in values):
        return array.array("d", values).tobytes()
    return np.asarray(values, dtype=np.float64).tobytes()


def _write_error(path: Path, e: Exception) -> RunLogError:
    """SQLite says "database or disk is full" for a disk out of space, but only "disk I/O error" when a write
    is refused for a quota or a file size limit: say what that most often means."""
    why = str(e)
    if getattr(e, "sqlite_errorname", "") == "SQLITE_IOERR_WRITE":
        why += ": the disk may be full, or the file over a quota or size limit"
    return RunLogError(f"{path}: cannot write run log ({why})")


@dataclass(frozen=True)
class _Layout:
    series: str
    dtype: str
    names: tuple


class RunReader:
    """Reads a run log, also while another process is writing it.

    Every query sees one consistent snapshot (WAL readers never see half a step). `after=` returns only
    the rows with step > after, so a live view can poll cheaply.
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        if path.is_dir():
            path = path / DB_NAME
        self.path = path
        if not path.is_file():
            raise RunLogError(f"{path}: no run log here")
        self._db = _open_log(path)
        try:
            self._db.execute("PRAGMA query_only=1")
            version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise RunLogError(f"{path}: not a readable ForgeScope run log ({e})") from e
        if version is None or int(version[0]) > SCHEMA_VERSION:
            self._db.close()
            raise RunLogError(f"{path}: unsupported run log schema version {version and version[0]}"
                              f" (this ForgeScope reads version {SCHEMA_VERSION})")
        self._layouts: dict[int, _Layout] = {}

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _query(self, sql, args=()):
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise RunLogError(f"{self.path}: run log is damaged or unreadable ({e})") from e

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._query("SELECT key, value FROM meta")}

    def last_step(self) -> int | None:
        (step,) = self._query("SELECT MAX(step) FROM steps")[0]
        return step

    def step_count(self) -> int:
        return self._query("SELECT COUNT(*) FROM steps")[0][0]

    def recent_step_times(self, n: int) -> list[tuple[int, float]]:
        """(step, wall time) of the last n steps, oldest first."""
        rows = self._query("SELECT step, time FROM steps ORDER BY step DESC LIMIT ?", (int(n),))
        return rows[::-1]

    def series_names(self) -> list[str]:
        return [s for (s,) in self._query("SELECT DISTINCT series FROM layouts ORDER BY series")]

    def scalars(self, after: int | None = None) -> pd.DataFrame:
        """One row per step: wall time and the per-step scalars (loss, step_time_s, data_wait_s, mem.*)."""
        times = self._query("SELECT step, time FROM steps WHERE step > ? ORDER BY step", (_after(after),))
        frame = pd.DataFrame({"time": np.fromiter((t for _, t in times), dtype=np.float64, count=len(times))},
                             index=pd.Index(np.fromiter((s for s, _ in times), dtype=np.int64, count=len(times)),
                                            name="step"))
        values = self.series("scalars", after=after)
        return frame.join(values, how="left")

    def series(self, series: str, after: int | None = None) -> pd.DataFrame:
        """A step x name frame for one series (e.g. 'grad_norm' by parameter), NaN where not recorded."""
        self._refresh_layouts()
        ids = [lid for lid, lay in self._layouts.items() if lay.series == series]
        if not ids:
            return pd.DataFrame(index=pd.Index([], name="step", dtype="int64"))
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT layout, step, data FROM records WHERE layout IN ({marks}) AND step > ?"
                           f" ORDER BY layout, step", (*ids, _after(after)))
        frames = []
        start = 0
        while start < len(rows):        # rows arrive grouped by layout: decode each group in one go
            lid = rows[start][0]
            end = start
            while end < len(rows) and rows[end][0] == lid:
                end += 1
            lay = self._layouts[lid]
            blob = b"".join(r[2] for r in rows[start:end])
            values = np.frombuffer(blob, dtype=_DTYPES[lay.dtype]).reshape(end - start, len(lay.names))
            steps = np.fromiter((r[1] for r in rows[start:end]), dtype=np.int64, count=end - start)
            frames.append(pd.DataFrame(values, columns=list(lay.names), index=pd.Index(steps, name="step")))
            start = end
        if not frames:
            return pd.DataFrame(index=pd.Index([], name="step", dtype="int64"))
        frame = frames[0] if len(frames) == 1 else pd.concat(frames).sort_index()
        return frame

    def trees(self) -> list[tuple[int, dict]]:
        return [(step, json.loads(t)) for step, t in self._query("SELECT step, tree FROM trees ORDER BY id")]

    def tree(self) -> dict | None:
        rows = self._query("SELECT tree FROM trees ORDER BY id DESC LIMIT 1")
        return json.loads(rows[0][0]) if rows else None

    def findings(self) -> list[dict]:
        return [json.loads(f) for (f,) in self._query("SELECT finding FROM findings ORDER BY id")]

    def _refresh_layouts(self):
        known = max(self._layouts, default=0)
        for lid, series, dtype, names in self._query(
                "SELECT id, series, dtype, names FROM layouts WHERE id > ?", (known,)):
            self._layouts[lid] = _Layout(series, dtype, tuple(json.loads(names)))


def _open_log(path: Path) -> sqlite3.Connection:
    """A connection to the log at `path`; for a published run (probes.segments), to the writer's live log
    when it is on this host, else to this process's replica of what is published (probes.replica)."""
    try:
        if segments.is_published(path.parent):
            live = replica.live_log(path.parent)
            if live is not None:
                with contextlib.suppress(sqlite3.OperationalError):     # gone meanwhile: the run closed
                    return _connect(live, "rw")
            return _connect(replica.replica_for(path.parent), "rw")
        try:
            return _connect(path, "rw")
        except sqlite3.OperationalError:   # a read-only copy of a finished run
            return _connect(path, "ro")
    except (sqlite3.Error, OSError) as e:
        raise RunLogError(f"{path}: cannot read run log ({e})") from e


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=10, check_same_thread=False)


def _after(after: int | None) -> int:
    return -(2 ** 62) if after is None else int(after)
