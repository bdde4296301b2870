"""memory-growth, seen from autograd within a few steps: graphs of earlier steps that are still alive.

A loop that keeps the model's outputs or its losses as tensors (`history.append(out)`, `losses.append(loss)`,
`total_loss += loss`) keeps every step's autograd graph, and with it the activations that graph saved:
memory grows every step until the run dies. RSS shows it only after many steps (allocator noise hides a
few MB); the graph shows it at once. On the first steps (and on diagnostic steps) the model's output and
the loss get a small marker in their graph node's metadata; a marker lives exactly as long as the node.
When the markers of three or more earlier steps are all still alive (the step before is allowed: a loop
may keep its last loss for logging), something holds those graphs.
"""
from __future__ import annotations

import weakref

import torch

from ..checks import thresholds as T
from ..findings import Finding
from ._base import SafeWatcher, frame_location, user_frames

_KEY = "forgescope.step"


class _Mark:
    __slots__ = ("step", "kind", "location", "__weakref__")

    def __init__(self, step: int, kind: str, location: str | None):
        self.step, self.kind, self.location = step, kind, location


def _graph_tensor(out):
    """The first tensor of a model's output that has a graph (a tensor, a tuple/list, a dict, ModelOutput)."""
    if isinstance(out, torch.Tensor):
        return out if out.grad_fn is not None else None
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    for v in values:
        if isinstance(v, torch.Tensor) and v.grad_fn is not None:
            return v
    return None


class KeptGraphs(SafeWatcher):
    code = "memory-growth"

    def _attach(self) -> None:
        self._marks: list[weakref.ref] = []
        self._step = 0
        self._reported = False
        self.hook(self.ctx.model, "forward", self._on_output)

    def _due(self) -> bool:
        return not self._reported and (self._step < T.KEPT_GRAPH_WATCH_STEPS or bool(self.ctx.diagnose(self._step)))

    def _step_start(self, step: int) -> None:
        self._step = step

    def _mark(self, tensor: torch.Tensor, kind: str) -> None:
        node = tensor.grad_fn
        if node is None or _KEY in node.metadata:
            return
        frame = next(user_frames(3), None)
        mark = _Mark(self._step, kind, frame_location(frame))
        node.metadata[_KEY] = mark
        self._marks.append(weakref.ref(mark))

    def _on_output(self, module, args, output) -> None:
        if torch.is_grad_enabled() and self._due():
            t = _graph_tensor(output)
            if t is not None:
                self._mark(t, "model output")

    def _backward(self, loss) -> None:
        if self._due():
            self._mark(loss, "loss")

    def _step_end(self, step: int) -> None:
        if self._reported:
            return
        alive = [m for m in (r() for r in self._marks) if m is not None]
        self._marks = [weakref.ref(m) for m in alive]
        kept = sorted({m.step for m in alive if m.step < step - 1})
        if len(kept) < T.KEPT_GRAPH_STEPS:
            return
        self._reported = True
        kinds = sorted({m.kind for m in alive if m.step in kept})
        where = next((m.location for m in alive if m.step == kept[0] and m.location), None)
        what = " and ".join(f"the {k}s" for k in kinds)
        self.ctx.emit(Finding(
            code=self.code, severity="warning",
            title=f"The autograd graphs of {len(kept)} earlier steps are still alive: memory grows every step",
            detail=(f"At step {step}, {what} of steps {', '.join(map(str, kept[:8]))}"
                    f"{' ...' if len(kept) > 8 else ''} still hold their autograd graphs, so every activation "
                    f"those graphs saved stays in memory. Something keeps the tensors themselves: a list of "
                    f"outputs or losses, or a running total (total_loss += loss). Memory grows by one step's "
                    f"graph per step until the run runs out of memory."),
            module=None, location=where,
            evidence={"step": step, "kept_steps": kept[:50], "kinds": kinds},
            fix=("Keep plain numbers, not tensors: total_loss += loss.item(), history.append(out.detach()), or "
                 "run forwards you only monitor under torch.no_grad().")))
