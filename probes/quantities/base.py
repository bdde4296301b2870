"""The lifecycle every statistic shares: the base decides *when* (a schedule), a subclass says *what*.

The Probe calls these events, in this order, for each training step k:
  step_start(ctx)            the previous step ended (or the Probe attached); ctx.step == k
  before_update(ctx, idx)    an optimizer is about to step: grads are final, weights not yet changed
  after_update(ctx, idx)     that optimizer has stepped (idx: indices into ctx.params it holds)
  step_end(ctx) -> record    the step is complete; return {series: values} as plain CPU data
Events are only delivered on steps where the quantity is due, except step_start, which is delivered
every step so a quantity can prepare for a due step (arm hooks, take a snapshot).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch

from ..guard import Guard
from ..schedules import Schedule


# Tensors up to this many elements are measured whole. Larger ones (weights for update sizes, module
# outputs for activation statistics) are measured on a sample of this many elements where a sample is
# enough: the cost and the memory stay flat as models grow. The sample is RUNS runs of 16 consecutive
# elements (a 64-byte cache line of float32) spread evenly over the tensor: single elements at a small
# stride would touch every cache line anyway (2 ns each), and long runs would line up with a matrix's
# rows and see only its first columns.
SAMPLE = 1 << 14
RUNS = 1024


def sample_view(t: torch.Tensor) -> torch.Tensor | None:
    """A view of SAMPLE elements of t (RUNS evenly spaced runs of SAMPLE // RUNS), or None where t is small
    enough to measure whole or has no plain flat layout (a tensor subclass such as DTensor, or a
    non-contiguous tensor). The same shape of tensor always gives the same positions."""
    n = t.numel()
    if n <= SAMPLE or type(t) is not torch.Tensor or not t.is_contiguous():
        return None
    spacing = n // RUNS                       # >= SAMPLE // RUNS, since n > SAMPLE
    return t.view(-1)[:RUNS * spacing].view(RUNS, spacing)[:, :SAMPLE // RUNS]


@dataclass
class StepContext:
    step: int
    names: list[str]                          # tracked parameter names, in model order
    params: list[torch.Tensor]                # the tensors themselves (same order)
    modules: list[tuple[str, torch.nn.Module]]
    manual: bool = False                      # steps marked by probe.step(), no optimizer hooks
    covered: set[int] = field(default_factory=set)   # param indices already seen by an optimizer this step


class Quantity:
    """A statistic recorded on the steps its schedule says."""

    name = "quantity"

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self.guard = Guard()                  # the Probe hands every quantity its own guard
    def due(self, step: int) -> bool:
        return self.schedule(step)

    def step_start(self, ctx: StepContext) -> None:
        pass

    def before_update(self, ctx: StepContext, idx: Sequence[int]) -> None:
        pass

    def after_update(self, ctx: StepContext, idx: Sequence[int]) -> None:
        pass

    def step_end(self, ctx: StepContext) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Drop any hooks or buffers (safe to call twice)."""


# A float32 norm under this is recomputed in float64: float32 squares underflow below ~1e-19, so a vanishing
# gradient would otherwise read as exactly 0.
TINY = 1e-18


def fused_norms(tensors: Sequence[torch.Tensor], likely_tiny: Iterable[int] = ()) -> list[float]:
    """L2 norm of each tensor, in one fused pass per device and dtype, with one sync per device.

    likely_tiny: positions in `tensors` whose norm was under TINY last time (the caller remembers them).
    Those are measured in float64 first, and leave the fused float32 pass when that is clearly under TINY:
    the float32 pass would have been recomputed in float64 anyway, and over squares that underflow it runs
    several times slower per element. The values returned are the same either way."""
    if not tensors:
        return []
    out = [0.0] * len(tensors)
    done = set()
    for i in likely_tiny:
        t = tensors[i]
        if t.dtype == torch.float64 or t.is_sparse or t.is_complex() or t.numel() > _SURE_TINY_NUMEL:
            continue
        try:
            v = torch.linalg.vector_norm(t, dtype=torch.float64).item()
        except (RuntimeError, TypeError, NotImplementedError):
            continue
        # well under TINY: the float32 norm is under it too (it rounds by far less than 10x, and an underflow
        # only makes it smaller), so the float64 value is what the recomputation below would return
        if v < TINY / 10:
            out[i] = v
            done.add(i)
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        if i not in done:
            groups.setdefault((t.device, t.dtype, t.is_sparse), []).append(i)
    for (device, dtype, sparse), idx in groups.items():
        group = [tensors[i] for i in idx]
        if sparse:
            group = [t.coalesce().values() for t in group]
        # low-precision tensors are summed in float32 so the norm itself does not overflow
        acc = torch.float32 if dtype in (torch.float16, torch.bfloat16) else None
        try:
            norms = torch._foreach_norm(group, 2, dtype=acc)
        except (RuntimeError, TypeError, NotImplementedError):
            norms = [torch.linalg.vector_norm(t, dtype=acc) for t in group]
        for i, v in zip(idx, torch.stack(norms).double().cpu().tolist()):
            out[i] = v
    # float32 squares underflow below ~1e-19: a vanishing gradient would read as exactly 0. Those few
    # are recomputed in float64 (rare, so cheap).
    for i, v in enumerate(out):
        if i not in done and v < TINY and tensors[i].dtype != torch.float64 and not tensors[i].is_sparse:
            out[i] = torch.linalg.vector_norm(tensors[i], dtype=torch.float64).item()
    return out


# up to this many elements, the rounding of a float32 sum of squares stays far inside the 10x margin above
_SURE_TINY_NUMEL = 1 << 27


def count_nonfinite(t: torch.Tensor) -> int:
    return int(t.numel() - torch.isfinite(t).sum().item())
