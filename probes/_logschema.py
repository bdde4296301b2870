"""The run log's file format: its name, schema and version, and how an empty log is made (probes.runlog writes
and reads it; probes.segments publishes it in closed pieces). Nothing here imports torch."""
from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1
DB_NAME = "run.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layouts(
    id INTEGER PRIMARY KEY, series TEXT NOT NULL, dtype TEXT NOT NULL, names TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps(step INTEGER PRIMARY KEY, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS records(step INTEGER NOT NULL, layout INTEGER NOT NULL, data BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS records_by_layout ON records(layout, step);
CREATE TABLE IF NOT EXISTS trees(id INTEGER PRIMARY KEY, step INTEGER NOT NULL, tree TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS findings(id INTEGER PRIMARY KEY, step INTEGER, finding TEXT NOT NULL);
"""
# a published piece of a log (probes.segments) says which publications it holds and whose log it is
PUBLICATION = "CREATE TABLE IF NOT EXISTS publication(key TEXT PRIMARY KEY, value TEXT NOT NULL);"


def init_schema(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    db.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))


def create_empty(path: Path, publication: bool = False) -> None:
    """Build an empty log under a temporary name and rename it into place: a reader polling the folder sees
    a complete log or none, never a file without its tables."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.new")
    try:
        db = sqlite3.connect(tmp)
        try:
            init_schema(db)
            if publication:
                db.execute(PUBLICATION)
            db.commit()
        finally:
            db.close()
        os.replace(tmp, path)
    except BaseException:       # a full disk: no half-written file left in the run folder
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
        raise


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an error) around a block of writes."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error:
            # a COMMIT that failed (disk full) may leave the transaction open: end it, so the next write
            # (the run's closing status) is tried on its own rather than refused as nested
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            if exc_type is None:
                raise


# the published layout (probes.segments): the pieces' folder, the writer's note, the tables a piece holds
SEGMENTS = "segments"
LIVE = "live.json"
TABLES = ("meta", "layouts", "steps", "records", "trees", "findings")


def is_published(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / SEGMENTS).is_dir()


def segment_name(lo: int, hi: int) -> str:
    return f"{lo:08d}-{hi:08d}.db"


def parse_segment(name: str) -> tuple[int, int] | None:
    stem, dot, ext = name.partition(".")
    lo, dash, hi = stem.partition("-")
    if ext != "db" or not dash or not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
        return None
    return int(lo), int(hi)


def read_publication(db: sqlite3.Connection, schema: str = "main") -> dict[str, str]:
    try:
        return dict(db.execute(f"SELECT key, value FROM {schema}.publication").fetchall())
    except sqlite3.OperationalError:        # a plain log: no publication table
        return {}
