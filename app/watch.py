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
    """

    def __init__(self, root: str | os.PathLike):
        super().__init__()
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.version = 0
        self.newest: str | None = None          # the run folder of the latest change
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(self, str(self.root), recursive=True,
                                event_filter=[DirCreatedEvent, DirMovedEvent, DirDeletedEvent, FileCreatedEvent,
                                              FileMovedEvent, FileDeletedEvent])
        self._observer.start()

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
        self._observer.stop()
        self._observer.join(timeout=2)
