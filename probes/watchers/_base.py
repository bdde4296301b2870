"""What every watcher here shares: failures stay inside the watcher, and the user's line in a live stack.

A watcher's hooks run inside the user's forward. If one of them raises, the watcher warns once, removes
its hooks and falls silent: training goes on, and the Probe keeps recording everything else.
"""
from __future__ import annotations

import functools
import sys
import warnings

from torch import nn

from ..checks.base import Watcher
from ..errors import _is_library
from ..findings import location


class SafeWatcher(Watcher):
    """A Watcher whose lifecycle methods and hooks never raise into training.

    Subclasses implement `_attach`, `_step_start`, `_step_end`, `_detach` (each optional) and wrap every
    hook they register with `self.guard(fn)`.
    """

    def __init__(self):
        super().__init__()
        self.failed: str | None = None

    # the Probe's entry points, each guarded
    def attach(self, ctx) -> None:
        super().attach(ctx)
        self._run(self._attach)

    def step_start(self, step: int) -> None:
        if self.failed is None:
            self._run(self._step_start, step)

    def step_end(self, step: int) -> None:
        if self.failed is None:
            self._run(self._step_end, step)

    def detach(self) -> None:
        try:
            self._detach()
        finally:
            super().detach()

    # what subclasses fill in
    def _attach(self) -> None:
        pass

    def _step_start(self, step: int) -> None:
        pass

    def _step_end(self, step: int) -> None:
        pass

    def _detach(self) -> None:
        """Undo whatever is not a hook handle (patched attributes). Must be safe to call twice."""

    # failure handling
    def guard(self, fn):
        """Wrap a hook: an exception in it disables this watcher instead of reaching the user's code."""
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            if self.failed is not None:
                return None
            try:
                return fn(*args, **kwargs)
            except Exception as e:      # noqa: BLE001 - our failure must stay ours
                self._fail(e)
                return None
        return guarded

    def _run(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:          # noqa: BLE001
            self._fail(e)

    def _fail(self, exc: Exception) -> None:
        if self.failed is not None:
            return
        self.failed = f"{type(exc).__name__}: {exc}"
        from ..probe import ProbeWarning      # probe imports this package: import late
        warnings.warn(f"ForgeScope watcher {self.code} stopped ({self.failed}); training continues unaffected.",
                      ProbeWarning, stacklevel=2)
        try:
            self.detach()
        except Exception:               # noqa: BLE001 - half-attached: remove what we can
            pass


@functools.lru_cache(maxsize=2048)
def is_library_file(file: str) -> bool:
    """torch, probes, the standard library and installed packages: never 'the user's line'."""
    return _is_library(file)


def user_frames(skip: int = 1):
    """The live stack from the caller outwards, user frames only (frame objects)."""
    f = sys._getframe(skip)
    while f is not None:
        if not is_library_file(f.f_code.co_filename):
            yield f
        f = f.f_back


def frame_location(f) -> str | None:
    return location(f.f_code.co_filename, f.f_lineno) if f is not None else None


def frame_module(f) -> nn.Module | None:
    """The module whose method this frame runs (its `self`), if any."""
    me = f.f_locals.get("self") if f is not None else None
    return me if isinstance(me, nn.Module) else None
