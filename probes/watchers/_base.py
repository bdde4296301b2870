"""What every watcher here shares: failures stay inside the watcher, and the user's line in a live stack.

A watcher's hooks run inside the user's forward. If one of them raises, the watcher warns once, removes
its hooks and falls silent: training goes on, and the Probe keeps recording everything else.
"""
from __future__ import annotations

import functools
import sys

import torch
from torch import nn

from ..detectors.base import Watcher
from ..errors import _is_library
from ..findings import location
from ..guard import Guard


class SafeWatcher(Watcher):
    """A Watcher whose lifecycle methods and hooks never raise into training.

    Subclasses implement `_attach`, `_step_start`, `_step_end`, `_detach` (each optional), register every
    hook with `self.hook(target, kind, fn)` and wrap any other callback handed to torch with
    `self.guard(fn)`. All of it runs through the Probe's guard under the watcher's code: a failure warns
    once and detaches this watcher; the other watchers and statistics keep going.
    """

    def __init__(self):
        super().__init__()
        self._guard = None

    @property
    def failed(self) -> str | None:
        return self._guard.failed.get(self.code) if self._guard is not None else None

    # the Probe's entry points, each guarded
    def attach(self, ctx) -> None:
        super().attach(ctx)
        self._guard = ctx.guard if ctx.guard is not None else Guard()
        self._guard.on_fail(self.code, self.detach)
        self._run(self._attach)

    def step_start(self, step: int) -> None:
        self._run(self._step_start, step)

    def step_end(self, step: int) -> None:
        self._run(self._step_end, step)

    def backward(self, loss) -> None:
        self._run(self._backward, loss)

    def step_failed(self, error: str) -> None:
        """The training loop raised in the middle of a step (the Probe is closing with this error)."""
        self._run(self._step_failed, error)

    def detach(self) -> None:
        try:
            self._detach()
        finally:
            super().detach()

    # what subclasses fill in
    def _attach(self) -> None:
        pass

    def _step_start(self, step: int) -> None:
        pass

    def _step_end(self, step: int) -> None:
        pass

    def _backward(self, loss) -> None:
        pass

    def _step_failed(self, error: str) -> None:
        pass

    def _detach(self) -> None:
        """Undo whatever is not a hook handle (patched attributes). Must be safe to call twice."""

    # failure handling: one guard for all
    def guard(self, fn):
        """Wrap a callback: an exception in it disables this watcher instead of reaching the user's code."""
        return self._guard.wrap(self.code, fn)

    def hook(self, target, kind: str, fn, **kwargs) -> None:
        """Register fn as a `kind` hook of target (see Guard.hook), guarded, removed on detach."""
        handle = self._guard.hook(self.code, target, kind, fn, **kwargs)
        if handle is not None:
            self.handles.append(handle)

    def _run(self, fn, *args) -> None:
        self._guard.call(self.code, fn, *args)


@functools.lru_cache(maxsize=2048)
def is_library_file(file: str) -> bool:
    """torch, probes, the standard library and installed packages: never 'the user's line'."""
    return _is_library(file)


def user_frames(skip: int = 1):
    """The live stack from the caller outwards, user frames only (frame objects)."""
    f = sys._getframe(skip)
    while f is not None:
        if not is_library_file(f.f_code.co_filename):
            yield f
        f = f.f_back


def frame_location(f) -> str | None:
    return location(f.f_code.co_filename, f.f_lineno) if f is not None else None


def frame_module(f) -> nn.Module | None:
    """The module whose method this frame runs (its `self`), if any."""
    me = f.f_locals.get("self") if f is not None else None
    return me if isinstance(me, nn.Module) else None


def stepping_optimizer(opt):
    """The optimizer whose step() really updates the weights: a wrapper that keeps an inner optimizer over the
    same parameters and steps it itself (SAM's first_step/second_step, Lookahead) is hooked on that inner one."""
    import torch
    for value in vars(opt).values():
        if isinstance(value, torch.optim.Optimizer) and value is not opt and (
                value.param_groups is opt.param_groups
                or {id(p) for g in value.param_groups for p in g["params"]}
                == {id(p) for g in opt.param_groups for p in g["params"]}):
            return stepping_optimizer(value)
    return opt


# -- one walk over a loss's autograd graph, shared by the watchers that read it ---------------------------
WALK_LIMIT = 200_000            # graph nodes visited before giving up (then: unknown, never a finding)


class GraphWalk:
    """What one backward's graph holds: the leaves it reaches (ids of the tensors that get .grad) and its
    nodes by class name, for the few classes a watcher asked about. `leaves` is None when the graph was too
    large to walk. `opaque`: the graph holds a custom autograd Function (reentrant checkpointing, an
    extension's op), whose backward may reach parameters the graph does not show."""

    __slots__ = ("leaves", "nodes", "opaque")

    def __init__(self, leaves, nodes, opaque=False):
        self.leaves, self.nodes, self.opaque = leaves, nodes, opaque


# node classes any watcher reads (the loss functions and what feeds them); others are walked, not kept
WATCHED_NODES = frozenset({
    "NllLossBackward0", "NllLoss2DBackward0", "BinaryCrossEntropyBackward0",
    "BinaryCrossEntropyWithLogitsBackward0", "MseLossBackward0", "SmoothL1LossBackward0", "HuberLossBackward0",
    "L1LossBackward0",
    # zero-derivative operations (round, floor, ceil, sign, trunc): a loss through them trains nothing
    "RoundBackward0", "RoundBackward1", "FloorBackward0", "CeilBackward0", "SignBackward0", "TruncBackward0"})


def graph_walk(ctx, loss) -> GraphWalk:
    """The walk of `loss`'s graph, made once per backward call however many watchers ask (kept in ctx.shared
    under a weak reference to the loss: no graph outlives its backward because of us)."""
    import weakref
    shared = ctx.shared
    held = shared.get("walk")
    if held is not None and held[0]() is loss:
        return held[1]
    walk = walk_graph(loss)
    shared["walk"] = (weakref.ref(loss), walk)
    return walk


def walk_graph(loss) -> GraphWalk:
    """One pass over the graph below `loss` (about a microsecond a node)."""
    from torch.autograd.function import BackwardCFunction
    nodes: dict[str, list] = {}
    leaves: set | None = set()
    opaque = False
    seen: set = set()
    todo = [loss.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > WALK_LIMIT:
            leaves = None
            break
        name = type(node).__name__
        if name in WATCHED_NODES:
            nodes.setdefault(name, []).append(node)
        variable = getattr(node, "variable", None)          # AccumulateGrad: a leaf that gets .grad
        if variable is not None:
            leaves.add(id(variable))
        elif isinstance(node, BackwardCFunction):
            opaque = True
        todo.extend(n for n, _ in node.next_functions)
    return GraphWalk(leaves, nodes, opaque)


# -- what a loss's graph reaches, and what made it --------------------------------------------------
_NLL = ("NllLossBackward0", "NllLoss2DBackward0")
_PASS_THROUGH = ("ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0", "PermuteBackward0",
                 "TransposeBackward0", "ToCopyBackward0", "CloneBackward0", "SliceBackward0", "SelectBackward0",
                 "ContiguousBackward0")


# operations whose derivative is zero wherever it exists: a loss computed through them trains nothing
ZERO_DERIVATIVE = {"RoundBackward0": "torch.round", "RoundBackward1": "torch.round", "FloorBackward0": "torch.floor",
                   "CeilBackward0": "torch.ceil", "SignBackward0": "torch.sign", "TruncBackward0": "torch.trunc"}


def reaches(loss: torch.Tensor, params: set[int], zero_ops: set | None = None) -> bool | None:
    """Does the graph of `loss` reach any tensor in `params` (ids)? None when it cannot be told (too large to
    walk, or a custom autograd Function that may reach parameters the graph does not show). Zero-derivative
    operations met on the way are added to `zero_ops`."""
    return verdict(walk_graph(loss), params, zero_ops)


def verdict(walk, params: set[int], zero_ops: set | None) -> bool | None:
    """reaches(), from a walk already made (graph_walk: one per backward, shared by the watchers)."""
    if zero_ops is not None:
        zero_ops.update(ZERO_DERIVATIVE[name] for name in walk.nodes if name in ZERO_DERIVATIVE)
    if walk.leaves is None:
        return None
    if walk.leaves & params:
        return True
    return None if walk.opaque else False


def cross_entropy_classes(loss: torch.Tensor) -> int | None:
    """The number of classes when `loss` is a plain cross-entropy (log_softmax -> nll_loss), averaged or
    summed over the batch (a sum is what suspicious-initial-loss exists to point out)."""
    node = loss.grad_fn
    if node is None or type(node).__name__ not in _NLL or getattr(node, "_saved_reduction", None) not in (1, 2):
        return None
    for _ in range(6):
        inputs = [n for n, _ in node.next_functions if n is not None]
        if len(inputs) != 1:
            return None
        node = inputs[0]
        name = type(node).__name__
        if name == "LogSoftmaxBackward0":
            result, dim = node._saved_result, node._saved_dim
            return int(result.shape[dim]) if result.dim() else None
        if name not in _PASS_THROUGH:
            return None
    return None
