"""Watch model files for saves, and the run directory for new runs (watchdog observers shared by every
dashboard session).

Editors save in different ways (write in place, write a temp file then rename over the original), so a
file's version counts modified, created and moved-onto events for its resolved path. Sessions compare the
version with the one they last checked; no user code runs here.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileCreatedEvent, FileDeletedEvent,
                             FileMovedEvent, FileSystemEvent, FileSystemEventHandler)
from watchdog.observers import Observer

from probes.runlog import DB_NAME
from probes.sharedfs import shared_mode


class FileWatch(FileSystemEventHandler):
    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._dirs: set[str] = set()
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()

    def watch(self, path: str | os.PathLike) -> None:
        """Start following this file (idempotent); its folder is watched, not recursively."""
        target = str(Path(path).resolve())
        folder = os.path.dirname(target)
        with self._lock:
            self._versions.setdefault(target, 0)
            if folder in self._dirs or not os.path.isdir(folder):
                return
            self._dirs.add(folder)
        self._observer.schedule(self, folder, recursive=False)

    def version(self, path: str | os.PathLike) -> int:
        """How many times the file has been written since it was first watched."""
        with self._lock:
            return self._versions.get(str(Path(path).resolve()), 0)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("modified", "created", "moved", "closed"):
            return
        paths = [event.src_path] if event.event_type != "moved" else [event.dest_path]
        with self._lock:
            for p in paths:
                key = str(Path(os.fsdecode(p)).resolve())
                if key in self._versions and event.event_type != "closed":
                    self._versions[key] += 1

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=2)


class RunsWatch(FileSystemEventHandler):
    """New runs appearing under the run directory: a run folder made, a run log renamed into place.

    The observer asks the kernel for creations, moves and deletions only, so the steps a busy run writes
    (its write-ahead log) raise no events here. Sessions compare `version` with the one they last saw.
    On a network filesystem (probes.sharedfs) the kernel hears nothing of what other hosts write, so the
    run directory is listed every POLL_S instead: one listing and a look for each run's log.
    """

    POLL_S = 2.0

    def __init__(self, root: str | os.PathLike):
        super().__init__()
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.version = 0
        self.newest: str | None = None          # the run folder of the latest change
        self._stop = threading.Event()
        self._observer = None
        if shared_mode(self.root):
            self._seen = self._listing()
            threading.Thread(target=self._poll, name="forgescope-runs-poll", daemon=True).start()
            return
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(self, str(self.root), recursive=True,
                                event_filter=[DirCreatedEvent, DirMovedEvent, DirDeletedEvent, FileCreatedEvent,
                                              FileMovedEvent, FileDeletedEvent])
        self._observer.start()

    def _listing(self) -> dict[str, bool]:
        """run folder -> whether its log is there"""
        try:
            return {e.name: os.path.isfile(os.path.join(e.path, DB_NAME)) for e in os.scandir(self.root) if e.is_dir()}
        except OSError:
            return {}

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL_S):
            now = self._listing()
            changed = [name for name in now.keys() | self._seen.keys() if now.get(name) != self._seen.get(name)]
            self._seen = now
            if changed:
                with self._lock:
                    self.version += 1
                    self.newest = max(changed, key=lambda n: (n in now, n))

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = Path(os.fsdecode(event.dest_path if event.event_type == "moved" else event.src_path))
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return
        # <root>/<run> made or removed, or <root>/<run>/run.db in place (rank logs sit one level deeper)
        if (len(parts) == 1 and event.is_directory) or (len(parts) == 2 and parts[1] == DB_NAME):
            with self._lock:
                self.version += 1
                self.newest = parts[0]

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
