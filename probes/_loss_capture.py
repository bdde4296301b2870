"""Automatic loss capture: the scalar a loop calls .backward() on is, almost always, its loss.

Tensor.backward is wrapped once while any Probe is attached and restored when the last one closes. The
wrapper only keeps a detached reference (no sync, no copy); the value is read at the end of the step.
"""
from __future__ import annotations

import threading

import torch

_lock = threading.Lock()
_listeners: list = []
_original = None


def _backward(self, *args, **kwargs):
    try:
        if self.numel() == 1:        # a loss without a graph too: its backward is about to raise
            for listener in tuple(_listeners):
                listener(self)          # each listener is wrapped by its Probe's guard; keeps no graph
    except Exception:                   # noqa: BLE001 - the user's backward must run whatever we meet
        pass
    return _original(self, *args, **kwargs)


def add(listener) -> None:
    global _original
    with _lock:
        if _original is None:
            _original = torch.Tensor.backward
            torch.Tensor.backward = _backward
        _listeners.append(listener)


def listeners() -> int:
    return len(_listeners)


def remove(listener) -> None:
    global _original
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)
        if not _listeners and _original is not None:
            torch.Tensor.backward = _original
            _original = None
