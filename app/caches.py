"""What one dashboard server shares between its sessions: the file and run-directory watches, the devices
torch sees, and the runs on screen (each read whole once, then extended with its new steps)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import OrderedDict

import streamlit as st

from app import longrun, server
from app.data import LIVE_CHECK_EVERY_S, RunView, extend_run, load_run
from app.watch import FileWatch, RunsWatch
from probes.runs import run_status


@st.cache_resource
def file_watch() -> FileWatch:
    return FileWatch()


@st.cache_resource
def runs_watch(root: str) -> RunsWatch:
    return RunsWatch(root)


class _Devices:
    """The devices torch sees, found once per server in a subprocess (torch is not imported here)."""

    def __init__(self):
        self.found: list[str] | None = None
        threading.Thread(target=self._probe, daemon=True).start()

    def _probe(self):
        code = ("import torch\nd=['cpu']\nif torch.cuda.is_available(): d.insert(0,'cuda')\n"
                "mps=getattr(torch.backends,'mps',None)\nif mps is not None and mps.is_available(): d.insert(0,'mps')\n"
                "print(' '.join(d))")
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            self.found = out.stdout.split() or ["cpu"]
        except (OSError, subprocess.SubprocessError):
            self.found = ["cpu"]


@st.cache_resource
def devices() -> _Devices:
    return _Devices()


class _Run:
    """One run on screen: its last view, the log version it reflects, and its own lock (held by the one
    session bringing it up to date; the others are served the last view meanwhile, never kept waiting)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.version: tuple | None = None
        self.view: RunView | None = None
        self.checking = False           # a long run's checks are running in the background
        self.check_s = 0.0              # how long its last check took


class _Views:
    """The runs on screen, shared by every session: each read once (app.data.load_run), then extended with only
    the steps written since (app.data.extend_run) whenever its log changes. One session refreshes a run at a
    time; a session that finds a refresh under way shows the view it has (one refresh old) rather than wait.
    A long run's checks (app.longrun: a worker process over the whole log) run in a thread, off every page's
    path, at most every LIVE_CHECK_EVERY_S and using at most ~1/CHECK_SHARE of the time."""

    KEEP = 16
    CHECK_SHARE = 5

    def __init__(self):
        self._lock = threading.Lock()       # the table of runs only, never held while a run is read
        self._items: OrderedDict[str, _Run] = OrderedDict()

    def get(self, path: str, version: tuple) -> RunView:
        with self._lock:
            entry = self._items.setdefault(path, _Run())
            self._items.move_to_end(path)
            while len(self._items) > self.KEEP:
                self._items.popitem(last=False)
        if entry.view is None:              # the first look at this run: those opening it wait for it
            with entry.lock:
                if entry.view is None:
                    entry.view, entry.version = load_run(path), version
            return entry.view
        if entry.version == version:
            view = entry.view
            if view.status == "running":        # silent since: killed? (its files do not change)
                view.status = run_status(view.path, view.meta)
        elif entry.lock.acquire(blocking=False):
            try:
                if entry.version != version:
                    entry.view, entry.version = extend_run(entry.view), version
                    server.trim_memory()        # the frames this refresh replaced: back to the system
            finally:
                entry.lock.release()
        self._maybe_check(entry)
        return entry.view

    def _maybe_check(self, entry: _Run) -> None:
        view = entry.view
        if view.long is None or entry.checking:
            return
        since = time.monotonic() - view.checked_at
        ended = view.status != "running" and view.meta.get("status") != view.checked_status
        if ended or (view.status == "running" and since >= max(LIVE_CHECK_EVERY_S, self.CHECK_SHARE * entry.check_s)):
            entry.checking = True
            threading.Thread(target=self._check, args=(entry,), daemon=True, name="forgescope-check").start()

    @staticmethod
    def _check(entry: _Run) -> None:
        started, status = time.monotonic(), entry.view.meta.get("status")
        try:
            found = longrun.check(entry.view.path)
            with entry.lock:                # onto the newest view (a refresh carries it forward)
                entry.view.findings = found
                entry.view.checked_at, entry.view.checked_status = time.monotonic(), status
        except Exception:       # noqa: BLE001 - a log unreadable for a moment: the next check tries again
            entry.view.checked_at = time.monotonic()
        finally:
            entry.check_s = time.monotonic() - started
            entry.checking = False


@st.cache_resource
def _views() -> _Views:
    return _Views()


def run_view(path: str, version: tuple) -> RunView:
    """The run at `path` as of its log's `version` (app.data.log_version), from the shared cache."""
    return _views().get(path, version)
