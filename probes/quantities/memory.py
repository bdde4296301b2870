"""Process and accelerator memory, every step on every device (CPU users see RSS)."""
from __future__ import annotations

import psutil
import torch

from .base import Quantity


class Memory(Quantity):
    name = "memory"

    def __init__(self, schedule, device_types=()):
        super().__init__(schedule)
        self._process = psutil.Process()
        self._cuda = "cuda" in device_types and torch.cuda.is_available()
        self._mps = "mps" in device_types and hasattr(torch, "mps") and torch.backends.mps.is_available()

    def step_end(self, ctx):
        scalars = {"mem.rss_bytes": float(self._process.memory_info().rss)}
        if self._cuda:
            scalars["mem.cuda_allocated_bytes"] = float(torch.cuda.memory_allocated())
            scalars["mem.cuda_reserved_bytes"] = float(torch.cuda.memory_reserved())
            # peak within this step: reset after reading so the next step starts from its own floor
            scalars["mem.cuda_peak_bytes"] = float(torch.cuda.max_memory_allocated())
            torch.cuda.reset_peak_memory_stats()
        if self._mps:
            scalars["mem.mps_allocated_bytes"] = float(torch.mps.current_allocated_memory())
        return {"scalars": scalars}
