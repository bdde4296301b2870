"""The Probe: attach to a model and its optimizers, record every step to a run log, detach cleanly.

    with Probe(model, optimizer, run_dir="runs") as probe:
        for inputs, targets in probe.wrap(loader):
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(); loss.backward(); optimizer.step()

Steps are seen through optimizer step hooks (or marked by hand with probe.step() when there is no
optimizer). The Probe never raises into the training loop: if recording fails, it warns once, stops
recording and lets training go on; every hook runs through one guard (probes/guard.py), so a failure
in one statistic or detector disables that one, warns once, and the rest keeps recording.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from . import _loss_capture
from ._loop_inputs import LoopInputs, _to_float
from ._recording import CORE, RunRecording, _fingerprint, _tensors
from .detectors import WatchContext
from .distributed import rank_info
from .findings import Finding
from .guard import Guard, ProbeWarning, flush_removals
from .loader import WrappedLoader
from .quantities import Activations, GradNorm, Memory, ParamChecksum, Quantity, UpdateSize
from .runlog import DB_NAME, RunWriter
from .runs import Heartbeat
from .schedules import as_schedule, first
from .tree import structure_key
from .watchers import WATCHERS
from .watchers._base import stepping_optimizer

# Defaults chosen to keep a Probe near 1.03x of the training thread's CPU time per step (benchmarks/overhead.py;
# the README's table says where it is met).
# Measured on CPU (benchmarks/overhead.py --profile): one fused pass over every gradient costs 4-9% of a
# step on MLPs, a weight snapshot-and-diff ~20%, activation statistics up to ~30%: each is affordable
# only every N steps. Loss, step time, data wait and memory are cheap and recorded every step.
DEFAULTS = {
    "grad_norm": 10,       # fused per-parameter gradient norms (and non-finite gradient counts)
    "update_size": 20,     # weight deltas: a snapshot copy of every weight, held during optimizer.step()
    "activations": 25,     # forward hooks on every module, attached only for due steps
    "memory": 1,           # RSS / CUDA counters: microseconds
    "tree": 100,           # re-check the registration tree (it is also re-taken on every structural change)
    "diagnose": first(3, then_every=1000),   # steps on which costly runtime detectors may run
    "sync_check": 50,      # under torch.distributed: per-parameter checksums, compared across ranks
}



__all__ = ["DEFAULTS", "Probe", "ProbeWarning"]


class Probe(RunRecording, LoopInputs):
    """Records what training does to a model. See the module docstring for the usual loop."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | Sequence | None = None,
                 run_dir: str | os.PathLike = "runs", *, run_name: str | None = None,
                 grad_norm=DEFAULTS["grad_norm"], update_size=DEFAULTS["update_size"],
                 activations=DEFAULTS["activations"], memory=DEFAULTS["memory"], tree=DEFAULTS["tree"],
                 diagnose=DEFAULTS["diagnose"], sync_check=DEFAULTS["sync_check"], capture_loss: bool = True,
                 meta: dict | None = None):
        # validate everything before touching the model: a bad setting fails here, not at step 10,000
        if not isinstance(model, nn.Module):
            raise TypeError(f"Probe(model=...): expected an nn.Module, got {type(model).__name__}")
        self.optimizers: list[torch.optim.Optimizer] = _as_optimizers(optimizer)
        self._schedules = {name: as_schedule(name, value) for name, value in
                           (("grad_norm", grad_norm), ("update_size", update_size),
                            ("activations", activations), ("memory", memory), ("tree", tree),
                            ("diagnose", diagnose), ("sync_check", sync_check))}
        if run_name is not None and (not run_name or os.sep in run_name or run_name in (".", "..")):
            raise ValueError(f"Probe(run_name={run_name!r}): a run name is one directory name")

        self.model = model
        self.step_count = 0                 # completed steps; the step being built has this index
        self.findings: list[Finding] = []
        self.error: str | None = None       # why recording stopped, if it did
        self.run_path: Path | None = None
        self._capture_loss = capture_loss
        self._handles: list = []
        self.watchers = []
        self._module_names: dict[int, str] = {}
        self._writer: RunWriter | None = None
        self._heartbeat: Heartbeat | None = None
        self._closed = False
        self._recording = False
        self._seen_findings: set = set()
        self._last_tree_json: str | None = None
        self._tree_dirty = False
        self._structure: list = []
        self._stepped: set[int] = set()      # optimizers that stepped in the step being built
        self._losses: list[torch.Tensor] = []
        self._forward_ran = False
        self._logged: dict[str, Any] = {}
        self._data_wait = 0.0
        self._step_t0 = time.perf_counter()
        self._waited_before_first_step = False
        self._backward_calls = 0            # over the whole run: backward with no optimizer step is a finding
        self._opt_steps = [0] * len(self.optimizers)
        self._shared: dict = {}             # what the watchers share (a loss graph's walk, the loss calls)
        self.guard = Guard(core=CORE)
        self.guard.on_fail(CORE, self._halt)

        self.rank = rank_info()             # None unless torch.distributed runs several ranks
        devices = {t.device.type for t in _tensors(model)}
        self.quantities: list[Quantity] = [
            GradNorm(self._schedules["grad_norm"]),
            UpdateSize(self._schedules["update_size"]),
            Activations(self._schedules["activations"]),
            Memory(self._schedules["memory"], device_types=devices),
        ]
        if self.rank is not None:
            self.quantities.append(ParamChecksum(self._schedules["sync_check"]))
        for q in self.quantities:
            q.guard = self.guard
            self.guard.on_fail(q.name, lambda q=q: self._drop_quantity(q))
        try:
            self._open_run(Path(run_dir), run_name, meta or {})
        except Exception as e:   # an unwritable run directory must not stop training
            self.guard.fail(CORE, f"cannot open a run log under {run_dir}: {e}")
            return
        self._guarded(self._attach)

    # -- public API ---------------------------------------------------------------------------------
    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(error=None if exc_type is None else f"{exc_type.__name__}: {exc}")

    def wrap(self, loader: Iterable) -> WrappedLoader:
        """Iterate `loader` through the Probe to measure how long each step waits for data."""
        return WrappedLoader(loader, self.guard.wrap("data wait", self._on_data_wait),
                             self.guard.wrap("data wait", self._on_loader))

    def log(self, **values: Any) -> None:
        """Record scalars for the step being built (e.g. probe.log(loss=loss, lr=lr)).

        An explicit loss overrides the loss captured from .backward(). Tensors are read at step end.
        """
        self._logged.update(values)

    def step(self) -> None:
        """Mark the end of a step by hand (needed only when the Probe has no optimizer)."""
        if not self._recording:
            return
        if self.optimizers and not self._stepped:
            return          # optimizer hooks already ended this step
        self._guarded(self._end_step)

    def close(self, error: str | None = None) -> None:
        """Finish the run and remove every hook; the model is left exactly as it was. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._recording and error:
            for w in self.watchers:             # a crash mid-step can be the symptom of a bug they saw
                w.step_failed(error)
        if self._recording and self._stepped:
            self._guarded(self._end_step)       # an unfinished multi-optimizer step
        self._recording = False
        self._detach()
        self._finish_log(error)

    @property
    def run_log(self) -> Path | None:
        return None if self.run_path is None else self.run_path / DB_NAME

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("recording" if self._recording else "stopped")
        return f"Probe({type(self.model).__name__}, {state}, steps={self.step_count}, run={self.run_path})"

    # -- attach / detach --------------------------------------------------------------------------
    def _attach(self) -> None:
        self._recording = True
        self._refresh_tree(step=None)
        guard = self.guard
        for i, opt in enumerate(self.optimizers):
            stepping = stepping_optimizer(opt)
            self._handles.append(guard.hook(CORE, stepping, "step_ready", self._pre_hook(i)))
            self._handles.append(guard.hook(CORE, stepping, "step_post", self._post_hook(i)))
        self._fingerprint = self.guard.call("weights changed", _fingerprint, self.model)
        # structure changes anywhere in the model (a layer assigned in forward, a new parameter)
        self._handles += [guard.hook("tree", None, kind, self._on_register)
                          for kind in ("module_registration", "parameter_registration", "buffer_registration")]
        context = WatchContext(model=self.model, optimizers=self.optimizers,
                               module_name=lambda m: self._module_names.get(id(m)),
                               emit=lambda f: self._guarded(self._emit_live, f),
                               diagnose=self._schedules["diagnose"], guard=guard,
                               record_meta=lambda **values: self._guarded(lambda: self._writer.set_meta(**values)),
                               reported=lambda: list(self.findings))
        self._shared = context.shared
        for cls in WATCHERS:
            watcher = cls()
            self.watchers.append(watcher)
            watcher.attach(context)
        if self._capture_loss:
            self._loss_listener = guard.wrap("loss capture", self._on_backward)
            _loss_capture.add(self._loss_listener)
            # with several Probes in one process, a loss belongs to the Probe whose model ran forward
            self._handles.append(guard.hook("loss capture", self.model, "forward_pre", self._forward_hook()))
        self._start_step()

    def _detach(self) -> None:
        for handle in self._handles:
            if handle is not None:
                handle.remove()
        self._handles = []
        for q in self.quantities:
            try:
                q.close()
            except Exception:       # noqa: BLE001 - the rest must still be removed
                pass
        for w in self.watchers:
            try:
                w.detach()
            except Exception:       # noqa: BLE001
                pass
        _loss_capture.remove(getattr(self, "_loss_listener", None))
        flush_removals()            # optimizer hooks removed from inside an optimizer hook (a failure there)

    def _drop_quantity(self, q: Quantity) -> None:
        """A statistic failed: it records nothing more; the others go on."""
        self.quantities = [x for x in self.quantities if x is not q]
        self._due = [x for x in getattr(self, "_due", []) if x is not q]
        q.close()

    # -- the step ---------------------------------------------------------------------------------
    def _pre_hook(self, i: int):
        def hook(optimizer, args, kwargs):
            if self._recording:
                self._before_update(i)
        return hook

    def _post_hook(self, i: int):
        def hook(optimizer, args, kwargs):
            if self._recording:
                self._after_update(i)
        return hook

    def _each(self, method: str, *args) -> None:
        """Call one event on every due quantity, each under its own name in the guard."""
        for q in list(self._due):
            self.guard.call(q.name, getattr(q, method), *args)

    def _before_update(self, i: int) -> None:
        if i in self._stepped:          # this optimizer steps again: the previous step is over
            self._end_step()
        idx = self._opt_index[i]
        self._ctx.covered.update(idx)
        self._each("before_update", self._ctx, idx)

    def _after_update(self, i: int) -> None:
        idx = self._opt_index[i]
        self._each("after_update", self._ctx, idx)
        self._stepped.add(i)
        self._opt_steps[i] += 1
        if len(self._stepped) == len(self.optimizers):
            self._end_step()

    def _start_step(self) -> None:
        step = self.step_count
        self._ctx.step = step
        self._ctx.covered = set()
        self._due = [q for q in self.quantities if q.due(step)]
        for q in list(self.quantities):
            self.guard.call(q.name, q.step_start, self._ctx)
        for w in self.watchers:
            w.step_start(step)

    def _end_step(self) -> None:
        step = self.step_count
        now = time.perf_counter()
        scalars = {"step_time_s": now - self._step_t0, "data_wait_s": self._data_wait}
        loss = self._read_loss()
        if loss is not None:
            scalars["loss"] = loss
            if not math.isfinite(loss):
                scalars["loss_nonfinite"] = 1.0     # told apart from a step that had no loss to record
        for name, value in self._logged.items():
            if name != "loss":
                scalars[name] = _to_float(value)
        for w in self.watchers:
            w.step_end(step)
        vectors = {}
        for q in list(self._due):
            for series, value in (self.guard.call(q.name, q.step_end, self._ctx) or {}).items():
                if series == "scalars":
                    scalars.update(value)
                else:
                    vectors[series] = value
        self._writer.write_step(step, scalars, vectors)
        self.step_count += 1
        self._stepped.clear()
        self._losses, self._logged, self._data_wait, self._forward_ran = [], {}, 0.0, False
        if self._tree_dirty or step == 0:
            self._refresh_tree(step)
        elif self._schedules["tree"](step) and structure_key(self.model, self.optimizers) != self._structure:
            self._refresh_tree(step)
        self._step_t0 = time.perf_counter()
        self._start_step()

    def _on_register(self, module, name, value):
        if self._recording and id(module) in self._module_ids:
            self._tree_dirty = True

    # -- never crash the training job -------------------------------------------------------------
    def _guarded(self, fn, *args):
        """The step itself and the run log: a failure here stops recording (the guard warns once)."""
        return self.guard.call(CORE, fn, *args)

    def _halt(self) -> None:
        """Recording failed (the run log cannot be written, or the step cannot be read): stop, detach."""
        self.error = self.guard.failed.get(CORE)
        self._recording = False
        self._detach()
        if self._heartbeat is not None:       # recording is over: the run must not look alive any more
            self._heartbeat.stop()
            self._heartbeat = None


def _as_optimizers(optimizer) -> list[torch.optim.Optimizer]:
    if optimizer is None:
        return []
    opts = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
    for o in opts:
        if not isinstance(o, torch.optim.Optimizer):
            raise TypeError(f"Probe(optimizer=...): expected a torch.optim.Optimizer, a list of them or None, "
                            f"got {type(o).__name__}")
    if len({id(o) for o in opts}) != len(opts):
        raise ValueError("Probe(optimizer=...): the same optimizer is listed twice")
    return opts
