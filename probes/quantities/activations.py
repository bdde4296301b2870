"""Per-module output statistics: mean, std, fraction exactly zero, fraction non-finite."""
from __future__ import annotations

import math

import torch

from .base import Quantity, sample_view

STATS = ("act_mean", "act_std", "act_zero_frac", "act_nonfinite_frac")


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


class Activations(Quantity):
    """Forward hooks are attached only for the steps that are due and removed after the last of a
    run of due steps, so steps in between run with no hooks at all (and every-step recording does not
    re-register a hook per module per step).

    Per output the hook makes one pass over the whole tensor, its sum: the mean is exact, and any NaN/Inf
    anywhere in the output shows in it (then, rarely, the non-finite values are counted exactly). The
    second moment and the count of zeros come from an evenly spread sample of SAMPLE elements (all of
    the output when it is smaller), so the std and the zero fraction of a large output are estimates
    (a few % for the std of an output whose features differ in scale). The std is derived on the host in
    float64: it agrees with torch.std to ~1e-5 relative on small outputs unless |mean| dwarfs the std.
    """

    name = "activations"

    def __init__(self, schedule):
        super().__init__(schedule)
        self._handles = []
        self._hooked = None         # the module list the hooks were attached for (indices into it)
        self._stats: dict[int, tuple] = {}      # module index -> (row, elements, elements sampled)

    def step_start(self, ctx):
        self._stats = {}
        if not self.due(ctx.step) or self._hooked is not ctx.modules:
            self.close()
        if self.due(ctx.step) and not self._handles:    # else kept from the step before, due too
            self._hooked = ctx.modules
            for i, (_, mod) in enumerate(ctx.modules):
                handle = self.guard.hook(self.name, mod, "forward", self._hook(i))
                if handle is not None:
                    self._handles.append(handle)

    def _hook(self, i):
        def hook(module, args, output):
            # first training-mode call per step; validation passes under no_grad are not training stats
            if i in self._stats or not torch.is_grad_enabled():
                return
            t = _first_tensor(output)
            if t is None or t.numel() == 0 or t.layout != torch.strided:
                return
            # detached: the reductions below build no graph, so no no_grad() context is needed
            f = t.detach()
            if f.is_complex():
                f = torch.view_as_real(f)       # real and imaginary parts, as two values each
            elif not f.is_floating_point():
                f = f.float()
            # sums in float32 at least, and in the output's own precision when it is wider (float64)
            acc = torch.float32 if f.dtype in (torch.float16, torch.bfloat16) else None
            n = f.numel()
            part = sample_view(f)
            part = f if part is None else part
            # the one pass over the whole output: its sum gives the exact mean, and is non-finite if any
            # element is; the second moment and the zeros are read from the sample (all of f when small)
            total = f.sum(dtype=acc)
            norm = torch.linalg.vector_norm(part, dtype=acc)
            nonzero = torch.count_nonzero(part)
            if f.device.type == "cpu":
                # plain floats at once (a CPU .item() waits for nothing); all finite: nothing to count
                s, q = total.item(), norm.item()
                bad = 0 if math.isfinite(s) else n - int(torch.isfinite(f).sum())
                self._stats[i] = ((s, q, float(nonzero), float(bad)), n, part.numel())
            else:
                # kept on the device: one transfer per device at step end, not one sync per module
                bad = n - torch.isfinite(f).sum()
                self._stats[i] = (torch.stack([total, norm, nonzero.float(), bad.float()]), n, part.numel())
        return hook

    def step_end(self, ctx):
        if not self.due(ctx.step + 1):
            self.close()
        names = [name for name, _ in ctx.modules]
        columns = [[math.nan] * len(names) for _ in STATS]
        rows: dict[int, tuple] = {}
        by_device: dict[torch.device, list[int]] = {}
        for i, (row, _, _) in self._stats.items():
            if isinstance(row, tuple):
                rows[i] = row
            else:
                by_device.setdefault(row.device, []).append(i)
        for idx in by_device.values():
            values = torch.stack([self._stats[i][0] for i in idx]).double().cpu().tolist()
            rows.update(zip(idx, values))
        for i, (total, norm, nonzero, bad) in rows.items():
            _, n, k = self._stats[i]
            mean = total / n
            # the sample's mean square, less the exact mean squared; Bessel's correction for the whole output
            var = max(norm * norm / k - mean * mean, 0.0) * n / (n - 1) if n > 1 else 0.0
            columns[0][i], columns[1][i] = mean, math.sqrt(var) if math.isfinite(var) else math.nan
            columns[2][i], columns[3][i] = (k - nonzero) / k, bad / n
        self._stats = {}
        return {stat: (names, col) for stat, col in zip(STATS, columns)}

    def close(self):
        for h in self._handles:
            h.remove()
        self._handles = []
        self._hooked = None
