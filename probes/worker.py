"""The check worker: a separate process that imports the user's model file and trains it a few steps.

    python -m probes.worker CONFIG.json

The user's code runs here and only here. Whatever it does (raise, sys.exit, hang, abort), the result
JSON is written to the path named in the config, or the parent (probes.cli) reports the crash.
"""
from __future__ import annotations

import contextlib
import faulthandler
import functools
import inspect
import itertools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checks.registration import missing_super_init_finding
from .errors import UserCodeError, _is_library, describe_failure, user_frame
from .findings import Finding, explained_elsewhere, location
from .guard import Guard
from .modelfile import (UserHooks, call_model, class_dim, default_loss, first_output_tensor, infer_inputs,
                        infer_targets, load_module, model_factory, resolve_device, split_batch, to_device)
from .tree import describe_module, init_location, is_initialised, named_modules, snapshot


class CallTracker:
    """Which module was running when forward failed, and what it was given.

    A global forward pre-hook pushes each module call, a forward hook pops it; after an exception the
    innermost call is still on the stack.
    """

    def __init__(self):
        self.stack: list[tuple[nn.Module, tuple]] = []
        self.names: dict[int, str] = {}
        guard = Guard()     # the worker's own bookkeeping must not fail the user's forward either
        self._handles = [guard.hook("call tracking", None, "module_forward_pre", self._push),
                         guard.hook("call tracking", None, "module_forward", self._pop)]

    def name(self, model: nn.Module) -> None:
        self.names = {id(m): p for p, m in named_modules(model)}

    def _push(self, module, args):
        self.stack.append((module, args))

    def _pop(self, module, args, output):
        if self.stack:
            self.stack.pop()

    def reset(self):
        self.stack.clear()

    def context(self) -> str:
        if not self.stack:
            return ""
        module, args = self.stack[-1]
        path = self.names.get(id(module))
        who = ((f"module {path}" if path else "the model") if path is not None
               else f"an unregistered {type(module).__name__} (not part of the model)")
        shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
        given = " and ".join(str(s) if len(s) != 1 else f"({s[0]},)" for s in shapes) or "no tensor"
        return f"{who} ({describe_module(module)}) received input of shape {given}"

    def close(self):
        for h in self._handles:
            h.remove()


def _uninitialised_findings(model: nn.Module) -> list[Finding]:
    return [missing_super_init_finding(type(m).__name__, p, init_location(type(m)))
            for p, m in named_modules(model) if not is_initialised(m)]


def _construction_super_init(exc: BaseException, factory=None) -> Finding | None:
    """nn.Module refuses `self.layer = ...` before Module.__init__ ran: name the class and the line."""
    if not (isinstance(exc, AttributeError) and "before Module.__init__() call" in str(exc)):
        return None
    tb = exc.__traceback__
    culprit = None
    building = []       # the modules whose __init__ was running, outermost first
    while tb is not None:
        me = tb.tb_frame.f_locals.get("self")
        if tb.tb_frame.f_code.co_name == "__init__" and isinstance(me, nn.Module):
            if not any(me is b for b in building):
                building.append(me)
            if not is_initialised(me):
                culprit = (me, tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if culprit is None:
        return None
    me, file, line = culprit
    cls = type(me)
    # the outermost module being built failed: the finding is about the model (path ""); a module built inside
    # it is named by the attributes its parents were assigning it to (self.trunk = Trunk() -> "trunk")
    module = "" if building[0] is me else _assigned_path(exc.__traceback__, building, me)
    finding = missing_super_init_finding(cls.__name__, module, init_location(cls), error=str(exc))
    finding.evidence["failed_at"] = location(file, line)
    return finding


def _assigned_path(tb, building: list, me) -> str | None:
    """The dotted path `me` would have had: for each parent __init__ on the stack, the `self.NAME = ...` its
    current line assigns (None when a line does not read that way, e.g. a layer built in a loop)."""
    import linecache
    import re
    lines = {}
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if tb.tb_frame.f_code.co_name == "__init__" and any(owner is b for b in building):
            lines[id(owner)] = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    names = []
    for parent in building[:[id(b) for b in building].index(id(me))]:
        m = re.match(r"\s*self\.(\w+)\s*=", lines.get(id(parent), ""))
        if m is None:
            return None
        names.append(m[1])
    return ".".join(names)


@contextlib.contextmanager
def _construction_sites(cls: type):
    """While active, record the user's line that constructs each instance of `cls` (subclasses included):
    yields {id(instance): 'file:line'}. Used around make_optimizer() and make_loader(), so that findings about
    the optimizer or the loader can point at the line that builds it."""
    sites: dict[int, str | None] = {}
    own = "__init__" in vars(cls)
    original = cls.__init__

    @functools.wraps(original)
    def init(self, *args, **kwargs):
        frame = sys._getframe(1)
        # out of library code, and out of the instance's own (user subclass) __init__: the line that builds it
        while frame is not None and (_is_library(frame.f_code.co_filename)
                                     or (frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is self)):
            frame = frame.f_back
        sites[id(self)] = location(frame.f_code.co_filename, frame.f_lineno) if frame is not None else None
        return original(self, *args, **kwargs)

    cls.__init__ = init
    try:
        yield sites
    finally:
        if own:
            cls.__init__ = original
        else:
            del cls.__init__


def _layers_built_in_forward(model: nn.Module, inputs) -> list[Finding]:
    """layer-created-in-forward, seen in one forward of `model` watched by that watcher alone (no Probe yet:
    the model has no parameters to build an optimizer from)."""
    from .checks.base import WatchContext
    from .watchers.layer_in_forward import LayerCreatedInForward
    found: list[Finding] = []
    names = {id(m): p for p, m in named_modules(model)}
    ctx = WatchContext(model=model, optimizers=[], module_name=lambda m: names.get(id(m)), emit=found.append,
                       diagnose=lambda step: True, guard=Guard())
    watcher = LayerCreatedInForward()
    watcher.attach(ctx)
    watcher.step_start(0)
    state = torch.random.get_rng_state()
    try:
        call_model(model, inputs)
    except Exception:       # noqa: BLE001 - the check's own run reports the failure
        pass
    finally:
        watcher.step_end(0)
        watcher.detach()
        torch.random.set_rng_state(state)
    return found


def _device_findings(model: nn.Module) -> list[Finding]:
    """mixed-devices from a registration tree taken now: for a failure before the Probe attached (no run
    log, so no run checks), when a tensor on another device is the likely reason."""
    import pandas as pd

    from .checks import RunData
    from .checks.training import mixed_devices
    try:
        tree = snapshot(model)
    except Exception:       # noqa: BLE001 - a half-built model: the error says enough
        return []
    empty = pd.DataFrame()
    return mixed_devices(RunData(meta={}, tree=tree, scalars=empty, series=lambda name: empty))


class Check:
    """One check run: every stage records what it is doing, so a failure can say so."""

    def __init__(self, config: dict[str, Any]):
        self.cfg = config
        self.path = Path(config["model_file"])
        self.stage = "being imported"
        self.model: nn.Module | None = None
        self.factory = None                 # what builds the model: a class, build_model or --model NAME
        self.probe = None
        self.tracker = CallTracker()
        self._loader = None
        self._inputs = None                 # the first batch's inputs (for --compile-check)
        self._loader_location = None        # 'file:line' where make_loader() built its DataLoader
        self.extra: list[Finding] = []      # findings made before the Probe attached
        self.result: dict[str, Any] = {"model": None, "device": None, "steps": 0, "run_dir": None,
                                       "error": None, "error_location": None, "findings": []}

    def run(self) -> dict[str, Any]:
        completed = False
        try:
            self._run()
            completed = True
        except BaseException as exc:        # noqa: BLE001 - sys.exit and KeyboardInterrupt included
            self._fail(exc)
        finally:
            self.tracker.close()
            if self.probe is not None:
                self.probe.close(error=self.result["error"])
                self.result["steps"] = self.probe.step_count
                from .findings import notes
                failed = {k: v for k, v in self.probe.guard.failed.items() if k != "recording"}
                self.result["notes"] = notes(failed, list(self.probe.guard.notes.values()))
        if self.cfg.get("compile_check") and completed and self.result["error"] is None:
            self._compile_check()
        found = [f.to_dict() for f in (self.probe.findings if self.probe is not None else []) + self.extra]
        self.result["findings"] = [f for f in found if not explained_elsewhere(f, found)]
        return self.result

    def _compile_check(self) -> None:
        """--compile-check: torch._dynamo.explain on a copy of the trained model, with the first batch's
        inputs. It runs after the Probe let go of the model, so none of our hooks is traced or fed."""
        if self.model is None or self._inputs is None:
            return
        from .checks.thresholds import COMPILE_TIME_MARGIN_S
        from .compile_check import compile_check
        deadline = self.cfg.get("deadline")
        limit = float(deadline) - time.time() - COMPILE_TIME_MARGIN_S if deadline else None
        found = compile_check(self.model, self._inputs, str(self.path), time_limit=limit)
        self.extra += found
        run_log = self.probe.run_log if self.probe is not None else None
        if found and run_log is not None and run_log.exists():     # so `report` says it too
            try:
                from .runlog import RunWriter
                writer = RunWriter(run_log)
                try:
                    writer.write_findings(None, [f.to_dict() for f in found])
                finally:
                    writer.close()
            except Exception:       # noqa: BLE001 - the check's own result matters more
                pass

    def _fail(self, exc: BaseException) -> None:
        found = _construction_super_init(exc, self.factory)
        if found is None and self.model is not None:
            uninit = _uninitialised_findings(self.model)
            found = uninit[0] if uninit else None
        if found is not None:   # the failure is itself a catalogued bug: report it as that finding
            if self.result["model"] is None and isinstance(self.factory, type):
                self.result["model"] = self.factory.__name__    # construction failed: name the class
            self._add(found)
            return
        if isinstance(exc, UserCodeError) and exc.location is None and self.path.name not in exc.message \
                and not exc.message.startswith("--"):
            exc = UserCodeError(f"{self.path}: {exc.message}", None, exc.stage)    # name the file, always
        context = self.tracker.context() if self.stage in ("running forward", "running train_step",
                                                           "running eval_step", "materialising lazy layers") else ""
        err = describe_failure(exc, self.path, self.stage, context)
        self.result["error"] = err.message
        self.result["error_location"] = err.location
        if self.probe is None and self.model is not None:
            # no run log yet (e.g. the dry forward failed): a tensor left on another device is a likely cause
            self.extra += _device_findings(self.model)

    def _add(self, finding: Finding) -> None:
        if self.probe is not None and self.probe.error is None:
            self.probe.add_findings([finding])
        else:
            self.extra.append(finding)

    def _run(self) -> None:
        cfg = self.cfg
        module = load_module(self.path)
        hooks = UserHooks.from_module(module)
        label, factory = model_factory(module, self.path, cfg.get("model"))
        self.factory = factory
        device = resolve_device(cfg.get("device", "auto"))
        self.result["device"] = str(device)

        self.stage = "building the model"
        torch.manual_seed(cfg.get("seed", 0))
        model = factory()
        if not isinstance(model, nn.Module):
            raise UserCodeError(f"{self.path}: {label} returned {type(model).__name__}, not an nn.Module")
        self.model = model
        self.result["model"] = type(model).__name__
        uninit = _uninitialised_findings(model)
        if uninit:
            for f in uninit:
                self._add(f)
            return
        model.to(device)
        model.train()
        self.tracker.name(model)

        self.stage = "making a batch"
        inputs, targets = next(self._batches(hooks, model, device, loader=None))
        self._inputs = inputs

        meta = {"source": "check", "model_file": str(self.path.resolve()),
                "batch_size": self.cfg.get("batch_size", 8), "steps_requested": self.cfg.get("steps")}
        if self._loader_location:
            meta["loader_location"] = self._loader_location      # where make_loader() builds the loader
        if targets is None or _has_lazy(model):
            self.stage = "materialising lazy layers" if _has_lazy(model) else "running forward"
            out = self._dry_forward(model, inputs)
            if targets is None:
                t = first_output_tensor(out)
                if t is None:
                    raise UserCodeError(f"{self.path}: the model returned {type(out).__name__}, not a tensor: "
                                        f"define make_batch(batch_size) and loss_fn(outputs, targets)")
                targets = infer_targets(t)
                if not targets.is_floating_point() and not hooks.loss_fn and not hooks.train_step:
                    meta["classes"] = int(t.shape[class_dim(t)])    # default cross-entropy over these classes
            self.tracker.name(model)

        self.stage = "building the optimizer"
        if not any(p.requires_grad for p in model.parameters()):
            # nothing to train: when forward builds its layers (every layer made in forward), the optimizer
            # is about to fail on an empty parameter list. Name that bug, not only the crash it causes.
            self.extra += _layers_built_in_forward(model, inputs)
        if hooks.make_optimizer:
            with _construction_sites(torch.optim.Optimizer) as built:
                optimizer = hooks.make_optimizer(model)
            # where each optimizer is built: findings about what it updates point there
            meta["optimizer_locations"] = [built.get(id(o)) or _def_location(hooks.make_optimizer)
                                           for o in (optimizer if isinstance(optimizer, (list, tuple))
                                                     else [optimizer])]
        else:
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = hooks.loss_fn or default_loss

        from .probe import Probe
        self.probe = Probe(model, optimizer, run_dir=cfg.get("run_dir", "runs"), run_name=cfg.get("run_name"),
                           grad_norm=1, update_size=1, activations=1, memory=1, tree=1, diagnose=1,
                           meta=meta)
        self.result["run_dir"] = str(self.probe.run_path) if self.probe.run_path else None
        if cfg.get("run_file") and self.result["run_dir"]:
            Path(cfg["run_file"]).write_text(self.result["run_dir"])
        if self.probe.error and self.probe.run_path is None:
            raise UserCodeError(f"{cfg.get('run_dir', 'runs')}: {self.probe.error}")
        if self.probe.error:        # ours, not the user's: say so, and do not blame their file or folder
            raise UserCodeError(f"ForgeScope could not watch this model ({self.probe.error}); this is a "
                                f"limitation or bug of ForgeScope, not a problem in {self.path.name}")
        batches = self._batches(hooks, model, device, loader=self._loader)
        batch = None
        self.stage = "making a batch"
        for batch in itertools.islice(batches, cfg.get("steps", 20)):
            if batch[1] is None:        # inferred inputs: the targets inferred from the output
                batch = (batch[0], targets)
            self._train_step(model, batch, optimizer, loss_fn, hooks)
            self.stage = "making a batch"
        if hooks.eval_step and batch is not None:
            self.stage = "running eval_step"
            self.tracker.reset()
            hooks.eval_step(model, batch)

    def _batches(self, hooks: UserHooks, model: nn.Module, device: torch.device, loader):
        """Training batches: from make_loader() (through the Probe, so data wait is timed), make_batch(),
        or inputs inferred from the first layer. With loader=None, the loader is made and only peeked at."""
        b = self.cfg.get("batch_size", 8)
        if hooks.make_loader:
            source = f"{_def_location(hooks.make_loader)}: make_loader()"
            if loader is None:
                with _construction_sites(DataLoader) as built:
                    self._loader = hooks.make_loader()
                self._loader_location = built.get(id(self._loader)) or _def_location(hooks.make_loader)
                for batch in self._loader:
                    yield to_device(split_batch(batch, source), device)
                raise UserCodeError(f"{self.path}: make_loader() gave no batches")
            for batch in self._epochs(loader):
                yield to_device(split_batch(batch, source), device)
            return
        if hooks.make_batch:
            source = f"{_def_location(hooks.make_batch)}: make_batch({b})"
            while True:
                yield to_device(split_batch(hooks.make_batch(b), source), device)
        inputs = to_device(infer_inputs(model, b), device)
        while True:
            yield inputs, None

    def _epochs(self, loader):
        """Epoch after epoch until the check has its steps; stops if the loader runs dry (a one-shot
        iterator)."""
        while True:
            empty = True
            for batch in self.probe.wrap(loader):
                empty = False
                yield batch
            if empty:
                return

    def _dry_forward(self, model, inputs):
        """One forward without gradients, in eval mode (no running-stat updates): shapes lazy layers
        and shows what the model outputs."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                self.tracker.reset()
                return call_model(model, inputs)
        finally:
            model.train(was_training)

    def _train_step(self, model, batch, optimizer, loss_fn, hooks):
        self.tracker.reset()
        if hooks.train_step:
            self.stage = "running train_step"
            loss = hooks.train_step(model, batch, optimizer, loss_fn)
            if loss is not None:
                self.probe.log(loss=loss)
            return
        inputs, targets = batch
        self.stage = "running forward"
        out = call_model(model, inputs)
        if out is None:
            raise UserCodeError(f"{_def_location(type(model).forward, self.path)}: forward returned None: "
                                f"return the outputs from forward()")
        self.stage = "computing the loss"
        loss = loss_fn(out, targets)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            where = _def_location(hooks.loss_fn, self.path) if hooks.loss_fn else self.path
            raise UserCodeError(f"{where}: the loss is {shape}, not a scalar: reduce it "
                                f"(e.g. .mean()) in loss_fn")
        self.stage = "running backward"
        # make_optimizer may return several optimizers (a GAN's generator and discriminator)
        optimizers = optimizer if isinstance(optimizer, (list, tuple)) else [optimizer]
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        self.stage = "stepping the optimizer"
        for opt in optimizers:
            opt.step()


class CheckpointCheck(Check):
    """`checkpoint MODEL_FILE CHECKPOINT`: build the model as a check does, then compare the checkpoint with
    its state_dict (read with weights_only=True: no pickled code runs)."""

    def _run(self) -> None:
        from .checkpoint import compare, load_checkpoint
        module = load_module(self.path)
        label, factory = model_factory(module, self.path, self.cfg.get("model"))
        self.factory = factory
        self.result["device"] = "cpu"
        self.stage = "building the model"
        torch.manual_seed(0)
        model = factory()
        if not isinstance(model, nn.Module):
            raise UserCodeError(f"{self.path}: {label} returned {type(model).__name__}, not an nn.Module")
        self.model = model
        self.result["model"] = type(model).__name__
        self.stage = "reading the checkpoint"
        checkpoint = Path(self.cfg["checkpoint"])
        loaded, refused = load_checkpoint(checkpoint)
        if refused is not None:
            self.extra.append(refused)
            return
        found, held = compare(model.state_dict(), loaded, checkpoint)
        self.extra += found
        self.result["checkpoint"] = held


def _def_location(fn, fallback=None) -> str:
    """'file:line' of the `def` of a user function (a hook, forward), for messages about what it returned."""
    code = getattr(inspect.unwrap(fn), "__code__", None) if callable(fn) else None
    if code is None:
        return str(fallback) if fallback is not None else getattr(fn, "__name__", repr(fn))
    return location(code.co_filename, code.co_firstlineno)


def _has_lazy(model: nn.Module) -> bool:
    return any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text())
    # a native crash (os.abort, segfault) or a hang still leaves the user's line behind for the parent
    crash = open(config["fault_file"], "w")
    faulthandler.enable(file=crash)
    if hasattr(signal, "SIGUSR1"):      # the parent asks for a stack dump before it stops a hung check
        faulthandler.register(signal.SIGUSR1, file=crash, all_threads=False)
    if config.get("timeout"):
        timeout = float(config["timeout"])
        # the parent's deadline counts from before this process started (importing torch takes seconds)
        left = float(config["deadline"]) - time.time() if config.get("deadline") else timeout
        faulthandler.dump_traceback_later(max(left - min(2.0, timeout / 5), 0.1), file=crash)
    _trace_os_exit(crash)
    # the user's prints must not mix with our output: the parent reads only the result file
    result = (CheckpointCheck if config.get("checkpoint") else Check)(config).run()
    tmp = Path(config["result_file"] + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, config["result_file"])
    faulthandler.cancel_dump_traceback_later()
    return 0


def _trace_os_exit(crash) -> None:
    """os._exit() skips every handler: leave a note and the stack first, so the parent can name the line."""
    real_exit, pid = os._exit, os.getpid()

    def _exit(code):
        if os.getpid() == pid:          # not in forked children (DataLoader workers exit this way)
            try:
                crash.write(f"ForgeScope: os._exit({code!r}) called\n")
                crash.flush()
                faulthandler.dump_traceback(file=crash, all_threads=False)
            except Exception:           # noqa: BLE001 - never stand in the way of the exit
                pass
        real_exit(code)

    os._exit = _exit


if __name__ == "__main__":
    sys.exit(main(sys.argv))
