"""Process and accelerator memory, every step on every device (CPU users see RSS)."""
from __future__ import annotations

import os

import psutil
import torch

from .base import Quantity


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _statm_rss(page=_PAGE) -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * page


_forks = 0          # forks into a child so far: a file opened before one is the parent's /proc/self


def _forked() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class _StatmReader:
    """The RSS from /proc/self/statm, the file kept open and read again from its start: one pread() a step
    instead of the nine system calls of open(), read() and close() (after a training step has pushed
    them out of the caches, each costs microseconds). Reopened in a forked child (the open file would be
    the parent's), and whenever a read fails or does not look like statm (its descriptor closed and
    reused by someone else)."""

    def __init__(self):
        self._fd = None
        self._forks = _forks

    def __call__(self) -> int:
        if self._fd is not None and self._forks == _forks:
            try:
                fields = os.pread(self._fd, 256, 0).split()
                if len(fields) == 7:
                    return int(fields[1]) * _PAGE
            except OSError:
                pass
        self._open()
        return int(os.pread(self._fd, 256, 0).split()[1]) * _PAGE

    def _open(self) -> None:
        if self._fd is not None and self._forks == _forks:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None                 # in a child, the parent's descriptor is left alone
        self._fd = os.open("/proc/self/statm", os.O_RDONLY)
        self._forks = _forks

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._forks == _forks:
            try:
                os.close(fd)
            except OSError:
                pass


def _rss_reader():
    """A function returning the process RSS in bytes: /proc/self/statm on Linux (one pread of the open
    file), else psutil (~20 µs)."""
    try:
        _statm_rss()
        reader = _StatmReader()
        reader()
        return reader
    except (OSError, ValueError, IndexError):
        process = psutil.Process()
        return lambda: process.memory_info().rss


class Memory(Quantity):
    name = "memory"

    def __init__(self, schedule, device_types=()):
        super().__init__(schedule)
        self._rss = _rss_reader()
        self._cuda = "cuda" in device_types and torch.cuda.is_available()
        self._mps = "mps" in device_types and hasattr(torch, "mps") and torch.backends.mps.is_available()

    def step_end(self, ctx):
        scalars = {"mem.rss_bytes": float(self._rss())}
        if self._cuda:
            scalars["mem.cuda_allocated_bytes"] = float(torch.cuda.memory_allocated())
            scalars["mem.cuda_reserved_bytes"] = float(torch.cuda.memory_reserved())
            # peak within this step: reset after reading so the next step starts from its own floor
            scalars["mem.cuda_peak_bytes"] = float(torch.cuda.max_memory_allocated())
            torch.cuda.reset_peak_memory_stats()
        if self._mps:
            scalars["mem.mps_allocated_bytes"] = float(torch.mps.current_allocated_memory())
        return {"scalars": scalars}

    def close(self):
        close = getattr(self._rss, "close", None)
        if close is not None:
            close()
