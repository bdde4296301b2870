"""What one dashboard server shares between its sessions: the file and run-directory watches, the devices
torch sees, and the runs on screen (each read whole once, then extended with its new steps)."""
from __future__ import annotations

import subprocess
import sys
import threading
from collections import OrderedDict

import streamlit as st

from app.data import RunView, extend_run, load_run
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


class _Views:
    """The runs on screen, shared by every session: each read whole once, then extended with only the
    steps written since (app.data.extend_run) whenever its log changes."""

    KEEP = 16

    def __init__(self):
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[tuple, RunView]] = OrderedDict()

    def get(self, path: str, version: tuple) -> RunView:
        with self._lock:
            cached = self._items.get(path)
            if cached is not None and cached[0] == version:
                view = cached[1]
                if view.status == "running":        # silent since: killed? (its files do not change)
                    view.status = run_status(view.path, view.meta)
            else:
                view = extend_run(cached[1]) if cached is not None else load_run(path)
            self._items[path] = (version, view)
            self._items.move_to_end(path)
            while len(self._items) > self.KEEP:
                self._items.popitem(last=False)
            return view


@st.cache_resource
def _views() -> _Views:
    return _Views()


def run_view(path: str, version: tuple) -> RunView:
    """The run at `path` as of its log's `version` (app.data.log_version), from the shared cache."""
    return _views().get(path, version)
