"""The Probe's run log: opening it, the registration tree and its checks, the findings (each said once), and
closing it with the run checks. A part of probes.probe.Probe (its base class), kept apart from the hooks.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from .detectors import RunData, check_run, check_tree, explained_elsewhere
from .distributed import agree_run_name
from .findings import Finding
from .quantities import StepContext
from .runlog import DB_NAME, RunReader, RunWriter
from .runs import Heartbeat
from .schedules import describe
from .tree import class_location, named_modules, snapshot, structure_key

CORE = "recording"       # the guard's name for the run log and the step itself: its failure stops recording


class RunRecording:
    """The run-log side of a Probe (see probes/probe.py for the attributes both sides share)."""

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

    def _finish_log(self, error: str | None) -> None:
        """The run is over: record whether the weights moved, run the run checks, close the log."""
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
        """The run checks over everything recorded, once, when the run ends. Not across ranks: at this rank's
        close the others may not have written (or, on a shared filesystem, published) their last steps, so
        whoever reads every log (report, the dashboard) compares them, once they are all there."""
        with RunReader(self.run_path) as reader:
            found = check_run(RunData.from_reader(reader, ranks=False))
        known = [f.to_dict() for f in self.findings]
        self._add_findings([f for f in found if not explained_elsewhere(f.to_dict(), known)], None)

    def add_findings(self, findings: Iterable[Finding]) -> None:
        """Record findings made outside the Probe (the check worker's own diagnoses)."""
        if self._writer is not None:
            self._guarded(self._add_findings, list(findings), self.step_count)


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
