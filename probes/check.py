"""One check of a model file, stage by stage (STAGES): import it, build the model, make its batches, build its
optimizer, attach a Probe, train a few steps, evaluate, close. Each stage is a method of `Check`; while one
runs, the check knows its name and what it is doing, so a failure's message and result say where it failed.

Runs inside the worker process (probes/worker.py), or a test's own process: it runs the user's code.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .batches import Batches
from .calls import CallTracker
# what the check sees while it builds the model, before a Probe attaches (probes/construction.py)
from .construction import construction_sites as _construction_sites
from .construction import device_findings as _device_findings
from .construction import layers_built_in_forward as _layers_built_in_forward
from .construction import super_init_failure as _construction_super_init
from .construction import uninitialised_findings as _uninitialised_findings
from .contract import CheckConfig, CheckResult
from .detectors import explained_elsewhere
from .errors import UserCodeError, describe_failure
from .findings import Finding
from .modelfile import (UserHooks, call_model, class_dim, def_location, default_loss, first_output_tensor,
                        infer_targets, load_module, model_factory, resolve_device)


# The stages of a check, in order. While one runs, `Check.stage` is its name (a failed check's result names
# the stage it failed in) and `Check.doing` says what it is doing (a file that calls sys.exit() is told
# "... while being imported"). "forward" runs only when needed, "close" always, and "compile" after it, with
# --compile-check. The checkpoint doctor (probes/checkpoint_check.py) runs load, build, compare and close.
STAGES = ("load", "build", "batches", "forward", "optimizer", "attach", "train", "evaluate", "close", "compile")


class Check:
    """One check run, stage by stage (STAGES), each a method: a failure says which stage and what it was doing."""

    def __init__(self, config: CheckConfig | dict[str, Any]):
        self.cfg = config if isinstance(config, CheckConfig) else CheckConfig.from_dict(config)
        self.path = Path(self.cfg.model_file)
        self.stage, self.doing = "load", "being imported"
        self.hooks = UserHooks()
        self.factory = None                 # what builds the model: a class, build_model or --model NAME
        self.label = ""                     # what the messages call it
        self.device: torch.device | None = None
        self.model: nn.Module | None = None
        self.data: Batches | None = None
        self.inputs = self.targets = None   # the first batch (its inputs for --compile-check too)
        self.opt = None                     # make_optimizer()'s optimizer (or a list of them), else Adam
        self.loss_fn = default_loss
        self.meta: dict[str, Any] = {}      # for the run log, from the stages before the Probe attaches
        self.last_batch = None
        self.probe = None
        self.tracker = CallTracker()
        self.extra: list[Finding] = []      # findings made before the Probe attached
        self.result = CheckResult()

    def run(self) -> dict[str, Any]:
        """Every stage; the result dict (CheckResult.to_dict())."""
        completed = False
        try:
            self._run()
            completed = True
        except BaseException as exc:        # noqa: BLE001 - sys.exit and KeyboardInterrupt included
            self._fail(exc)
        finally:
            self.close()
        if self.cfg.compile_check and completed and self.result.error is None:
            self.compile()
        found = [f.to_dict() for f in (self.probe.findings if self.probe is not None else []) + self.extra]
        self.result.findings = [f for f in found if not explained_elsewhere(f, found)]
        return self.result.to_dict()

    def _run(self) -> None:
        self.load()
        if not self.build():
            self.result.stage = "build"     # the modules that never ran nn.Module.__init__ are the findings
            return
        self.batches()
        self.forward()
        self.optimizer()
        self.attach()
        self.train()
        self.evaluate()

    def _begin(self, stage: str, doing: str) -> None:
        self.stage, self.doing = stage, doing

    # -- the stages ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Import the model file: its hooks (make_batch, loss_fn, ...), what builds the model, the device."""
        self._begin("load", "being imported")
        module = load_module(self.path)
        self.hooks = UserHooks.from_module(module)
        self.label, self.factory = model_factory(module, self.path, self.cfg.model)
        self.device = resolve_device(self.cfg.device)
        self.result.device = str(self.device)

    def build(self) -> bool:
        """Build the model, on its device, in train mode; False when a module in it never ran
        nn.Module.__init__ (those findings are the check's result: nothing can train it)."""
        self._make_model()
        model = self.model
        uninit = _uninitialised_findings(model)
        for f in uninit:
            self._add(f)
        if uninit:
            return False
        model.to(self.device)
        model.train()
        self.tracker.name(model)
        return True

    def _make_model(self) -> None:
        self._begin("build", "building the model")
        torch.manual_seed(self.cfg.seed)
        model = self.factory()
        if not isinstance(model, nn.Module):
            raise UserCodeError(f"{self.path}: {self.label} returned {type(model).__name__}, not an nn.Module")
        self.model = model
        self.result.model = type(model).__name__

    def batches(self) -> None:
        """The first batch, made as training will make them (make_loader() builds its loader here, once)."""
        self._begin("batches", "making a batch")
        self.data = Batches(self.hooks, self.path, self.cfg.batch_size, self.device)
        self.inputs, self.targets = self.data.first(self.model)

    def forward(self) -> None:
        """One forward without gradients, in eval mode (no running-stat updates), when needed: lazy layers take
        their shapes, and inferred inputs get targets shaped like the model's output."""
        model, lazy = self.model, _has_lazy(self.model)
        if self.targets is not None and not lazy:
            return
        self._begin("forward", "materialising lazy layers" if lazy else "running forward")
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                self.tracker.reset()
                out = call_model(model, self.inputs)
        finally:
            model.train(was_training)
        if self.targets is None:
            t = first_output_tensor(out)
            if t is None:
                raise UserCodeError(f"{self.path}: the model returned {type(out).__name__}, not a tensor: "
                                    f"define make_batch(batch_size) and loss_fn(outputs, targets)")
            self.targets = infer_targets(t)
            if not self.targets.is_floating_point() and not self.hooks.loss_fn and not self.hooks.train_step:
                self.meta["classes"] = int(t.shape[class_dim(t)])  # default cross-entropy over these classes
        self.tracker.name(model)

    def optimizer(self) -> None:
        """make_optimizer(model) (each optimizer's line kept, for findings about what it updates), else Adam;
        loss_fn, else the default loss."""
        self._begin("optimizer", "building the optimizer")
        model, make = self.model, self.hooks.make_optimizer
        if not any(p.requires_grad for p in model.parameters()):
            # nothing to train: when forward builds its layers (every layer made in forward), the optimizer
            # is about to fail on an empty parameter list. Name that bug, not only the crash it causes.
            self.extra += _layers_built_in_forward(model, self.inputs)
        if make:
            with _construction_sites(torch.optim.Optimizer) as built:
                self.opt = make(model)
            self.meta["optimizer_locations"] = [built.get(id(o)) or def_location(make)
                                                for o in (self.opt if isinstance(self.opt, (list, tuple))
                                                          else [self.opt])]
        else:
            self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.loss_fn = self.hooks.loss_fn or default_loss

    def attach(self) -> None:
        """A Probe on the model and its optimizer, recording to a new run log, named to the job at once."""
        self._begin("attach", "attaching the probe")
        from .probe import Probe
        cfg = self.cfg
        meta = {"source": "check", "model_file": str(self.path.resolve()), "batch_size": cfg.batch_size,
                "steps_requested": cfg.steps}
        if self.data.loader_location:
            meta["loader_location"] = self.data.loader_location     # where make_loader() builds the loader
        self.probe = Probe(self.model, self.opt, run_dir=cfg.run_dir, run_name=cfg.run_name, grad_norm=1,
                           update_size=1, activations=1, memory=1, tree=1, diagnose=1, meta={**meta, **self.meta})
        self.result.run_dir = str(self.probe.run_path) if self.probe.run_path else None
        if cfg.run_file and self.result.run_dir:
            Path(cfg.run_file).write_text(self.result.run_dir)
        if self.probe.error and self.probe.run_path is None:
            raise UserCodeError(f"{cfg.run_dir}: {self.probe.error}")
        if self.probe.error:        # ours, not the user's: say so, and do not blame their file or folder
            raise UserCodeError(f"ForgeScope could not watch this model ({self.probe.error}); this is a "
                                f"limitation or bug of ForgeScope, not a problem in {self.path.name}")

    def train(self) -> None:
        """The steps asked for (the loader's batches through the Probe, so data wait is timed)."""
        self._begin("train", "making a batch")
        for batch in itertools.islice(self.data.training(self.model, self.probe.wrap), self.cfg.steps):
            if batch[1] is None:        # inferred inputs: the targets inferred from the output
                batch = (batch[0], self.targets)
            self._train_step(batch)
            self.doing = "making a batch"
            self.last_batch = batch

    def evaluate(self) -> None:
        """eval_step(model, batch) on the last training batch, when the file defines one."""
        if not self.hooks.eval_step or self.last_batch is None:
            return
        self._begin("evaluate", "running eval_step")
        self.tracker.reset()
        self.hooks.eval_step(self.model, self.last_batch)

    def close(self) -> None:
        """Always, last: the Probe lets go and closes its run log (with the error, if any)."""
        self._begin("close", "closing the run log")
        self.tracker.close()
        if self.probe is None:
            return
        self.probe.close(error=self.result.error)
        self.result.steps = self.probe.step_count
        from .findings import notes
        failed = {k: v for k, v in self.probe.guard.failed.items() if k != "recording"}
        self.result.notes = notes(failed, list(self.probe.guard.notes.values()))

    def compile(self) -> None:
        """--compile-check: torch._dynamo.explain on a copy of the trained model, with the first batch's
        inputs. It runs after the Probe let go of the model, so none of our hooks is traced or fed."""
        if self.model is None or self.inputs is None:
            return
        self._begin("compile", "running the compile check")
        from .detectors.thresholds import COMPILE_TIME_MARGIN_S
        from .compile_check import compile_check
        limit = self.cfg.deadline - time.time() - COMPILE_TIME_MARGIN_S if self.cfg.deadline else None
        found = compile_check(self.model, self.inputs, str(self.path), time_limit=limit)
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

    # -- a failure, a step ------------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        self.result.stage = self.stage
        found = _construction_super_init(exc, self.factory)
        if found is None and self.model is not None:
            uninit = _uninitialised_findings(self.model)
            found = uninit[0] if uninit else None
        if found is not None:   # the failure is itself a catalogued bug: report it as that finding
            if self.result.model is None and isinstance(self.factory, type):
                self.result.model = self.factory.__name__      # construction failed: name the class
            self._add(found)
            return
        if isinstance(exc, UserCodeError) and exc.location is None and self.path.name not in exc.message \
                and not exc.message.startswith("--"):
            exc = UserCodeError(f"{self.path}: {exc.message}", None, exc.stage)    # name the file, always
        context = self.tracker.context() if self.doing in ("running forward", "running train_step",
                                                           "running eval_step", "materialising lazy layers") else ""
        err = describe_failure(exc, self.path, self.doing, context)
        self.result.error = err.message
        self.result.error_location = err.location
        if self.probe is None and self.model is not None:
            # no run log yet (e.g. the dry forward failed): a tensor left on another device is a likely cause
            self.extra += _device_findings(self.model)

    def _add(self, finding: Finding) -> None:
        if self.probe is not None and self.probe.error is None:
            self.probe.add_findings([finding])
        else:
            self.extra.append(finding)

    def _train_step(self, batch):
        model, hooks = self.model, self.hooks
        self.tracker.reset()
        if hooks.train_step:
            self.doing = "running train_step"
            loss = hooks.train_step(model, batch, self.opt, self.loss_fn)
            if loss is not None:
                self.probe.log(loss=loss)
            return
        inputs, targets = batch
        self.doing = "running forward"
        out = call_model(model, inputs)
        if out is None:
            raise UserCodeError(f"{def_location(type(model).forward, self.path)}: forward returned None: "
                                f"return the outputs from forward()")
        self.doing = "computing the loss"
        loss = self.loss_fn(out, targets)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            where = def_location(hooks.loss_fn, self.path) if hooks.loss_fn else self.path
            raise UserCodeError(f"{where}: the loss is {shape}, not a scalar: reduce it "
                                f"(e.g. .mean()) in loss_fn")
        self.doing = "running backward"
        # make_optimizer may return several optimizers (a GAN's generator and discriminator)
        optimizers = self.opt if isinstance(self.opt, (list, tuple)) else [self.opt]
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        self.doing = "stepping the optimizer"
        for opt in optimizers:
            opt.step()


def _has_lazy(model: nn.Module) -> bool:
    return any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())
