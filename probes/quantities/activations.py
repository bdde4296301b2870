"""Per-module output statistics: mean, std, fraction exactly zero, fraction non-finite."""
from __future__ import annotations

import math

import torch

from .base import Quantity

STATS = ("act_mean", "act_std", "act_zero_frac", "act_nonfinite_frac")


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


class Activations(Quantity):
    """Forward hooks are attached only for the steps that are due and removed right after, so
    steps in between run with no hooks at all."""

    name = "activations"

    def __init__(self, schedule):
        super().__init__(schedule)
        self._handles = []
        self._stats: dict[int, torch.Tensor] = {}

    def step_start(self, ctx):
        self.close()
        self._stats = {}
        if self.due(ctx.step):
            for i, (_, mod) in enumerate(ctx.modules):
                self._handles.append(mod.register_forward_hook(self._hook(i)))

    def _hook(self, i):
        def hook(module, args, output):
            # first training-mode call per step; validation passes under no_grad are not training stats
            if i in self._stats or not torch.is_grad_enabled():
                return
            t = _first_tensor(output)
            if t is None or t.numel() == 0 or t.is_sparse:
                return
            with torch.no_grad():
                f = t.detach()
                f = f.float() if not f.is_floating_point() or f.dtype in (torch.float16, torch.bfloat16) else f
                std, mean = torch.std_mean(f) if f.numel() > 1 else (torch.zeros((), device=f.device), f.mean())
                n = f.numel()
                # kept on the device: one transfer per device at step end, not one sync per module
                self._stats[i] = torch.stack([
                    mean.float(), std.float(), (f == 0).sum() / n, (n - torch.isfinite(f).sum()) / n])
        return hook

    def step_end(self, ctx):
        self.close()
        names = [name for name, _ in ctx.modules]
        columns = [[math.nan] * len(names) for _ in STATS]
        by_device: dict[torch.device, list[int]] = {}
        for i, row in self._stats.items():
            by_device.setdefault(row.device, []).append(i)
        for idx in by_device.values():
            values = torch.stack([self._stats[i] for i in idx]).cpu().tolist()
            for i, row in zip(idx, values):
                for s, v in enumerate(row):
                    columns[s][i] = v
        self._stats = {}
        return {stat: (names, col) for stat, col in zip(STATS, columns)}

    def close(self):
        for h in self._handles:
            h.remove()
        self._handles = []
