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

import json
import math
import os
import re
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from . import _loss_capture
from .checks import RunData, WatchContext, check_run, check_tree
from .distributed import agree_run_name, rank_info
from .findings import Finding, explained_elsewhere
from .guard import Guard, ProbeWarning, flush_removals
from .loader import WrappedLoader, loader_settings
from .quantities import Activations, GradNorm, Memory, ParamChecksum, Quantity, StepContext, UpdateSize
from .runlog import DB_NAME, Heartbeat, RunReader, RunWriter
from .schedules import as_schedule, describe, first
from .tree import class_location, named_modules, snapshot, structure_key
from .watchers import WATCHERS
from .watchers._base import stepping_optimizer

# Defaults chosen to keep a Probe under 1.05x step time (see benchmarks/overhead.py and the README).
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


CORE = "recording"       # the guard's name for the run log and the step itself: its failure stops recording

__all__ = ["DEFAULTS", "Probe", "ProbeWarning"]


class Probe:
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
        if self._writer is not None and self.error is None:
            # before the run checks: they read it (backward without a single optimizer step is a bug, if the
            # weights did not change either)
            now = self.guard.call("weights changed", _fingerprint, self.model)
            changed = None if now is None or self._fingerprint is None else now != self._fingerprint
            # per optimizer: did any weight it holds change (the others may step while one never does)
            moved = None
            if changed is not None and len(now) == len(self._fingerprint):
                index = {id(p): i for i, p in enumerate(_fingerprinted(self.model))}
                moved = [any(now[index[id(p)]] != self._fingerprint[index[id(p)]]
                             for g in o.param_groups for p in g["params"] if id(p) in index)
                         for o in self.optimizers]
            self._guarded(lambda: self._writer.set_meta(backward_calls=self._backward_calls,
                                                        weights_changed=changed, optimizer_steps=self._opt_steps,
                                                        optimizer_weights_changed=moved))
            self.guard.call("run checks", self._check_run)
        if self._writer is not None:
            try:
                failed = {k: v for k, v in self.guard.failed.items() if k != CORE}
                self._writer.set_meta(status="failed" if error else "finished", ended=time.time(),
                                      steps=self.step_count, error=error or self.error,
                                      not_recorded=failed, not_watched=list(self.guard.notes.values()))
            except Exception:
                pass
            self._writer.close()
            self._writer = None
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    @property
    def run_log(self) -> Path | None:
        return None if self.run_path is None else self.run_path / DB_NAME

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("recording" if self._recording else "stopped")
        return f"Probe({type(self.model).__name__}, {state}, steps={self.step_count}, run={self.run_path})"

    # -- attach / detach --------------------------------------------------------------------------
    def _open_run(self, run_dir: Path, run_name: str | None, meta: dict) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        named = _unwrapped(self.model)
        # the class name becomes a folder name: anything but letters, digits, . and - made safe (a name with
        # a "/" would nest folders, one with ".." could leave the run directory)
        name = run_name or f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', type(named).__name__).strip('.') or 'model'}"
        path = run_dir / name
        n = 1
        rank = self.rank["rank"] if self.rank else 0
        while (path / DB_NAME).exists() and run_name is None and rank == 0:     # two runs in the same second
            n += 1
            path = run_dir / f"{name}-{n}"
        if self.rank is not None:
            # one run, one log per rank: rank 0 names the run, the others write into it
            agreed = agree_run_name(rank, path.name)
            if rank:
                path = run_dir / agreed / f"rank{rank}" if agreed else run_dir / f"{name}-rank{rank}"
            params = [t for t in _tensors(self.model) if isinstance(t, nn.Parameter)]
            meta = {**self.rank, "param_numel": sum(t.numel() for t in params), **meta}
        self._writer = RunWriter(path / DB_NAME)
        self.run_path = path
        self._heartbeat = Heartbeat(path)        # readers tell a live run from a killed one by it
        device = next((str(t.device) for t in _tensors(self.model)), "cpu")
        self._writer.set_meta(
            model=type(named).__name__, model_location=class_location(type(named)),
            device=device, status="running", started=time.time(), pid=os.getpid(), host=socket.gethostname(),
            torch=torch.__version__, python=sys.version.split()[0], argv=sys.argv[:8], cpus=_cpu_count(),
            cadences={k: describe(s) for k, s in self._schedules.items()},
            optimizers=[_optimizer_info(o) for o in self.optimizers], loss_flags=True, **meta)

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

    def _read_loss(self) -> float | None:
        if "loss" in self._logged:
            return _to_float(self._logged["loss"])
        if not self._losses:
            return None
        values = [_to_float(t) for t in self._losses]
        return sum(values) / len(values)         # gradient accumulation: the mean of the micro-batches

    # -- the registration tree --------------------------------------------------------------------
    def _refresh_tree(self, step: int | None) -> None:
        """Re-take the tree; store it (and run the tree checks) only when it changed."""
        self._tree_dirty = False
        self._structure = structure_key(self.model, self.optimizers)
        tree = snapshot(self.model, self.optimizers)
        modules = [(path, mod) for path, mod in named_modules(self.model)]
        self._module_ids = {id(m) for _, m in modules}
        self._module_names = {id(m): path for path, m in modules}
        names, params, seen = [], [], set()
        for path, mod in modules:
            if "_parameters" not in vars(mod):
                continue
            for pname, p in mod._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    names.append(f"{path}.{pname}" if path else pname)
                    params.append(p)
        index = {id(p): i for i, p in enumerate(params)}
        self._opt_index = [[index[id(p)] for g in opt.param_groups for p in g["params"] if id(p) in index]
                           for opt in self.optimizers]
        ctx = StepContext(step=self.step_count, names=names, params=params, modules=modules,
                          manual=not self.optimizers)
        if hasattr(self, "_ctx"):
            ctx.covered = self._ctx.covered
        self._ctx = ctx
        text = json.dumps(tree, sort_keys=True)
        if text == self._last_tree_json:
            return
        self._last_tree_json = text
        self._writer.write_tree(-1 if step is None else step, tree)
        self.guard.call("tree checks", lambda: self._add_findings(check_tree(tree), step))

    def _add_findings(self, findings: Iterable[Finding], step: int | None) -> None:
        new = [f for f in findings if f.key not in self._seen_findings]
        for f in new:
            self._seen_findings.add(f.key)
            self.findings.append(f)
        if new:
            self._writer.write_findings(step, [f.to_dict() for f in new])

    def _emit_live(self, finding: Finding) -> None:
        """A watcher's finding, unless one already reported explains it (one bug, one finding)."""
        if not explained_elsewhere(finding.to_dict(), [f.to_dict() for f in self.findings]):
            self._add_findings([finding], self.step_count)

    def _check_run(self) -> None:
        """The run checks over everything recorded, once, when the run ends."""
        with RunReader(self.run_path) as reader:
            found = check_run(RunData.from_reader(reader))
        known = [f.to_dict() for f in self.findings]
        self._add_findings([f for f in found if not explained_elsewhere(f.to_dict(), known)], None)

    def add_findings(self, findings: Iterable[Finding]) -> None:
        """Record findings made outside the Probe (the check worker's own diagnoses)."""
        if self._writer is not None:
            self._guarded(self._add_findings, list(findings), self.step_count)

    def _on_register(self, module, name, value):
        if self._recording and id(module) in self._module_ids:
            self._tree_dirty = True

    # -- data and loss ----------------------------------------------------------------------------
    def _on_data_wait(self, seconds: float) -> None:
        self._data_wait += seconds
        if self.step_count == 0 and not self._waited_before_first_step:
            # the first step starts when the loop first asks for data, not when the Probe was built
            self._waited_before_first_step = True
            self._step_t0 = time.perf_counter() - seconds

    def _on_loader(self, loader) -> None:
        if self._writer is not None and self._recording:
            self._guarded(lambda: self._writer.set_meta(loader=loader_settings(loader)))

    def _forward_hook(self):
        # a closure, not a bound method: copy.deepcopy(model) (an EMA copy) copies a bound method's
        # Probe too, sqlite connection and all; a plain function is copied by reference
        def hook(module, args):
            self._forward_ran = True
        return hook

    def _on_backward(self, loss: torch.Tensor) -> None:
        if not self._recording:
            return
        if (self._forward_ran or _loss_capture.listeners() == 1) and loss.requires_grad:
            self._backward_calls += 1
            if len(self._losses) < 1024:
                self._losses.append(loss.detach())
        if self._forward_ran or _loss_capture.listeners() == 1:
            for w in self.watchers:
                w.backward(loss)
            # the walk of this loss's graph is for this backward only: holding its nodes any longer would keep
            # their metadata (kept-graph markers) alive
            self._shared.pop("walk", None)

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


def _fingerprinted(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.is_floating_point() or p.is_complex()]


def _fingerprint(model: nn.Module) -> list[float]:
    """The norm of every parameter: whether training changed any weight at all (read at attach and close)."""
    from .quantities.base import fused_norms
    return fused_norms([p.detach() for p in _fingerprinted(model)])


def _optimizer_info(opt: torch.optim.Optimizer) -> dict[str, Any]:
    groups = []
    for g in opt.param_groups:
        groups.append({k: v for k, v in g.items()
                       if k != "params" and isinstance(v, (int, float, str, bool, type(None)))})
    return {"class": type(opt).__name__, "param_groups": groups}


def _cpu_count() -> int | None:
    """CPUs this process may use (its affinity mask, not the machine's count): bounds useful num_workers."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _unwrapped(model: nn.Module) -> nn.Module:
    """The user's model inside a (Distributed)DataParallel wrapper: what the run is named after."""
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return model.module
    return model


def _tensors(model: nn.Module):
    for _, mod in named_modules(model):
        if "_parameters" in vars(mod):
            yield from (t for t in mod._parameters.values() if t is not None)
            yield from (t for t in mod._buffers.values() if t is not None)


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        value = value.float().mean() if value.numel() != 1 else value
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
