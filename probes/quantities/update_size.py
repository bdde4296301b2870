"""Weight change per step: ||ΔW||, ||W|| and the update ratio ||ΔW|| / ||W||, per parameter."""
from __future__ import annotations

import math

import torch

from .base import Quantity, count_nonfinite, fused_norms


class UpdateSize(Quantity):
    """Snapshot before the update, diff after it.

    The snapshot is taken in the optimizer's step pre-hook (the optimizer updates weights in place) and
    freed in the post-hook, so the extra memory is one copy of the parameters, held only during the
    optimizer step of a due step. With manual steps (no optimizer) it spans from one probe.step() to the next.
    """

    name = "update_size"

    def __init__(self, schedule):
        super().__init__(schedule)
        self._snap: dict[int, torch.Tensor] = {}

    def step_start(self, ctx):
        self._snap = {}
        if not self.due(ctx.step):
            return
        n = len(ctx.params)
        self._delta, self._weight, self._bad = [math.nan] * n, [math.nan] * n, [math.nan] * n
        if ctx.manual:
            self.before_update(ctx, range(n))

    def before_update(self, ctx, idx):
        idx = [i for i in idx if ctx.params[i].is_floating_point() and ctx.params[i].numel()]
        with torch.no_grad():
            copies = torch._foreach_mul([ctx.params[i] for i in idx], 1) if idx else []
        self._snap.update(zip(idx, copies))

    def after_update(self, ctx, idx):
        idx = [i for i in idx if i in self._snap]
        if not idx:
            return
        params = [ctx.params[i] for i in idx]
        snaps = [self._snap.pop(i) for i in idx]
        with torch.no_grad():
            torch._foreach_sub_(snaps, params)      # in place: the snapshot becomes -ΔW (no second copy)
        for i, d, w in zip(idx, fused_norms(snaps), fused_norms(params)):
            self._delta[i], self._weight[i] = d, w
            self._bad[i] = 0 if math.isfinite(w) else count_nonfinite(ctx.params[i])
        del snaps

    def step_end(self, ctx):
        if ctx.manual:
            self.after_update(ctx, range(len(ctx.params)))
        self._snap.clear()
        ratio = [d / w if w > 0 else math.nan for d, w in zip(self._delta, self._weight)]
        return {"update_norm": (ctx.names, self._delta), "weight_norm": (ctx.names, self._weight),
                "update_ratio": (ctx.names, ratio), "weight_nonfinite": (ctx.names, self._bad)}

    def close(self):
        self._snap = {}
