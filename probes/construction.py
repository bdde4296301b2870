"""What the check worker sees while it builds the model and what trains it, before any Probe is attached.

* missing-super-init, from the built model (`uninitialised_findings`) or from the exception building it
  raised (`super_init_failure`, which names the class, its line and the attribute path it would have had);
* layer-created-in-forward, in one forward watched by that watcher alone (`layers_built_in_forward`: the
  model has no parameters yet to build an optimizer from);
* mixed-devices, from a registration tree taken now, for a failure before the Probe attached
  (`device_findings`);
* the user's line that builds each optimizer or loader (`construction_sites`), where findings about them point.

The findings themselves are built by their codes' modules in probes/detectors.
"""
from __future__ import annotations

import contextlib
import functools
import sys

import torch
from torch import nn

from .detectors import missing_super_init
from .errors import _is_library
from .findings import Finding, location
from .guard import Guard
from .modelfile import call_model
from .tree import init_location, is_initialised, named_modules, snapshot


def uninitialised_findings(model: nn.Module) -> list[Finding]:
    return [missing_super_init.finding(type(m).__name__, p, init_location(type(m)))
            for p, m in named_modules(model) if not is_initialised(m)]


def super_init_failure(exc: BaseException, factory=None) -> Finding | None:
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
    module = "" if building[0] is me else assigned_path(exc.__traceback__, building, me)
    return missing_super_init.finding(cls.__name__, module, init_location(cls), error=str(exc),
                                      failed_at=location(file, line))


def assigned_path(tb, building: list, me) -> str | None:
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
def construction_sites(cls: type):
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


def layers_built_in_forward(model: nn.Module, inputs) -> list[Finding]:
    """layer-created-in-forward, seen in one forward of `model` watched by that watcher alone (no Probe yet:
    the model has no parameters to build an optimizer from)."""
    from .detectors.base import WatchContext
    from .watchers.layer_created_in_forward import LayerCreatedInForward
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


def device_findings(model: nn.Module) -> list[Finding]:
    """mixed-devices from a registration tree taken now: for a failure before the Probe attached (no run
    log, so no run checks), when a tensor on another device is the likely reason."""
    import pandas as pd

    from .detectors import RunData
    from .detectors.mixed_devices import mixed_devices
    try:
        tree = snapshot(model)
    except Exception:       # noqa: BLE001 - a half-built model: the error says enough
        return []
    empty = pd.DataFrame()
    return mixed_devices(RunData(meta={}, tree=tree, scalars=empty, series=lambda name: empty))
