"""Watch model files for saves (a watchdog observer shared by every dashboard session).

Editors save in different ways (write in place, write a temp file then rename over the original), so a
file's version counts modified, created and moved-onto events for its resolved path. Sessions compare the
version with the one they last checked; no user code runs here.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


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
