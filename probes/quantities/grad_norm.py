"""Per-parameter gradient norm and count of non-finite gradient values."""
from __future__ import annotations

import math

from .base import TINY, Quantity, count_nonfinite, fused_norms


class GradNorm(Quantity):
    """grad_norm[p] = ||p.grad||_2 (NaN where p has no grad); grad_nonfinite[p] = NaN/Inf values in p.grad.

    Read in the optimizer's step pre-hook, where grads are final — no backward hooks on modules (they
    cost 1.3x on deep models and break in-place ReLU).
    """

    name = "grad_norm"

    def __init__(self, schedule):
        super().__init__(schedule)
        self._tiny: set[int] = set()      # parameters whose gradient norm was under TINY when last read

    def step_start(self, ctx):
        self._norms = None

    def before_update(self, ctx, idx):
        self._record(ctx, idx)

    def _record(self, ctx, idx):
        if self._norms is None:
            n = len(ctx.params)
            self._norms, self._bad = [math.nan] * n, [math.nan] * n
        with_grad = [i for i in idx if ctx.params[i].grad is not None]
        tiny = self._tiny
        values = fused_norms([ctx.params[i].grad for i in with_grad],
                             likely_tiny=[k for k, i in enumerate(with_grad) if i in tiny] if tiny else ())
        for i, v in zip(with_grad, values):
            if v < TINY:
                tiny.add(i)
            else:
                tiny.discard(i)
            self._norms[i] = v
            # a finite norm means every element is finite: count only where it is not (rare, exact)
            self._bad[i] = 0 if math.isfinite(v) else count_nonfinite(ctx.params[i].grad)

    def step_end(self, ctx):
        # parameters no optimizer stepped this step (frozen, forgotten, or manual steps): read them now
        rest = [i for i in range(len(ctx.params)) if i not in ctx.covered]
        if rest or self._norms is None:
            self._record(ctx, rest)
        norms, bad, self._norms = self._norms, self._bad, None
        return {"grad_norm": (ctx.names, norms), "grad_nonfinite": (ctx.names, bad)}
