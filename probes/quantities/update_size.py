"""Weight change per step: ||ΔW||, ||W|| and the update ratio ||ΔW|| / ||W|| (W before the step), per parameter."""
from __future__ import annotations

import math

import torch

from .base import Quantity, count_nonfinite, fused_norms, sample_view

# Weights of up to base.SAMPLE elements are copied whole, so their ΔW is exact. A larger tensor is copied on an
# evenly spread sample, and ||ΔW|| is scaled from the sample to the whole tensor (about 0.5% relative
# error for updates of similar size). The snapshot stays a few MB whatever the model's size (a full copy of
# a 100M-parameter model would be 400 MB, a third of the model and its Adam state), and the copy, the
# difference and its norm cost a fraction of the time.


def _part(p: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The elements of p whose change is measured, and the factor from their ||ΔW|| to the tensor's."""
    part = sample_view(p.detach())
    if part is None:
        return p.detach(), 1.0
    return part, math.sqrt(p.numel() / part.numel())


class UpdateSize(Quantity):
    """Snapshot before the update, diff after it.

    The snapshot is taken in the optimizer's step pre-hook (the optimizer updates weights in place) and
    freed in the post-hook: whole copies of tensors up to SAMPLE elements and samples of larger
    ones, held only during the optimizer step of a due step. ||W|| is always exact. With manual steps
    (no optimizer) the snapshot spans from one probe.step() to the next.

    A sampled tensor whose sample did not change while its gradient is zero on the same sample (an
    embedding whose few used rows the sample missed, say) gets NaN, not 0: the sample cannot tell, and
    a 0 would read as "weights not updating".
    """

    name = "update_size"

    def __init__(self, schedule):
        super().__init__(schedule)
        self._snap: dict[int, tuple] = {}      # param index -> (copy, (the view copied, scale))

    def step_start(self, ctx):
        self._snap = {}
        if not self.due(ctx.step):
            return
        n = len(ctx.params)
        self._delta, self._weight, self._bad = [math.nan] * n, [math.nan] * n, [math.nan] * n
        self._before = [math.nan] * n
        if ctx.manual:
            self.before_update(ctx, range(n))

    def before_update(self, ctx, idx):
        idx = [i for i in idx if ctx.params[i].is_floating_point() and ctx.params[i].numel()]
        parts = [_part(ctx.params[i]) for i in idx]
        with torch.no_grad():
            # mul(1) of a sample view gives a compact copy of just those elements
            copies = torch._foreach_mul([part for part, _ in parts], 1) if idx else []
        # the views stay valid through the step: optimizers update weights in place
        self._snap.update(zip(idx, zip(copies, parts)))

    def after_update(self, ctx, idx):
        idx = [i for i in idx if i in self._snap]
        if not idx:
            return
        params = [ctx.params[i] for i in idx]
        snaps, parts = zip(*(self._snap.pop(i) for i in idx))
        snaps = list(snaps)
        before = fused_norms(snaps)              # ||W|| before the step (of the sample, for a large tensor)
        with torch.no_grad():
            torch._foreach_sub_(snaps, [part for part, _ in parts])   # in place: the snapshot becomes -ΔW
        for i, d, w, b, (_, scale) in zip(idx, fused_norms(snaps), fused_norms(params), before, parts):
            if d == 0 and scale != 1.0 and not _moved_on(ctx.params[i]):
                d = math.nan
            self._delta[i], self._weight[i], self._before[i] = d * scale, w, b * scale
            self._bad[i] = 0 if math.isfinite(w) else count_nonfinite(ctx.params[i])
        del snaps

    def step_end(self, ctx):
        if ctx.manual:
            self.after_update(ctx, range(len(ctx.params)))
        self._snap.clear()
        # the step's change against the weight it changed (a weight that starts at zero, like LoRA's B, has no
        # ratio on that first step)
        ratio = [d / b if b > 0 else math.nan for d, b in zip(self._delta, self._before)]
        return {"update_norm": (ctx.names, self._delta), "weight_norm": (ctx.names, self._weight),
                "update_ratio": (ctx.names, ratio), "weight_nonfinite": (ctx.names, self._bad)}

    def close(self):
        self._snap = {}


def _moved_on(p: torch.Tensor) -> bool:
    """Whether p's gradient is non-zero somewhere on the sampled elements (so an unchanged sample means
    the optimizer really left them alone)."""
    g = p.grad
    if g is None or g.is_sparse or g.shape != p.shape:
        return False
    same = sample_view(g.detach())          # the same positions: same shape, same sample
    return same is not None and bool(torch.count_nonzero(same).item())
