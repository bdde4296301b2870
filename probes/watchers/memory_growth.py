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

from ..detectors import memory_growth
from ..detectors import thresholds as T
from ._base import SafeWatcher, frame_location, user_frames

_KEY = "forgescope.step"


class _Mark:
    __slots__ = ("step", "kind", "location", "__weakref__")

    def __init__(self, step: int, kind: str, location: str | None):
        self.step, self.kind, self.location = step, kind, location


def _graph_tensors(out, depth: int = 0, limit: int = 8) -> list[torch.Tensor]:
    """The tensors of a model's output that have a graph (a tensor, nested tuples/lists, a dict, ModelOutput):
    the logits, and an RNN's hidden state too."""
    if isinstance(out, torch.Tensor):
        return [out] if out.grad_fn is not None else []
    if depth > 2:
        return []
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    found: list[torch.Tensor] = []
    for v in values:
        found += _graph_tensors(v, depth + 1, limit)
        if len(found) >= limit:
            break
    return found[:limit]


class KeptGraphs(SafeWatcher):
    code = memory_growth.CODE

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
            for t in _graph_tensors(output):
                self._mark(t, "model output")

    def _backward(self, loss) -> None:
        if self._due():
            self._mark(loss, "loss")

    def _step_failed(self, error: str) -> None:
        """backward failed on an earlier step's graph ("backward through the graph a second time", or its
        saved tensors changed in place since): with that step's graph still alive, a tensor carried across
        steps (an RNN's hidden state without .detach()) ties every step's graph together."""
        if self._reported or not any(s in error for s in ("backward through the graph a second time",
                                                          "modified by an inplace operation")):
            return
        alive = [m for m in (r() for r in self._marks) if m is not None and m.step < self._step]
        if not alive and not (self._step and self._parameter_changed_since(error)):
            return
        self._reported = True
        kept = sorted({m.step for m in alive}) or [self._step - 1]
        where = next((m.location for m in alive if m.location), None)
        self.ctx.emit(memory_growth.carried_graph(self._step, kept, error, where))

    def _parameter_changed_since(self, error: str) -> bool:
        """The tensor an in-place change broke is shaped like one of the model's weights: only an optimizer
        step changes weights in place, so backward ran on a graph built before the last step."""
        import re
        m = re.search(r"modified by an inplace operation: \[\S+ \[([\d, ]*)\]\]", error)
        if m is None:
            return False
        shape = tuple(int(d) for d in m[1].replace(" ", "").split(",") if d)
        return any(tuple(p.shape) == shape for p in self.ctx.model.parameters() if p.requires_grad)

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
        self.ctx.emit(memory_growth.kept_graphs(step, kept, kinds, where))
