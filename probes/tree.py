"""The registration tree: what the model really holds, as PyTorch sees it — and what it only seems to hold.

`snapshot(model, optimizers)` returns plain data: every module, every parameter and buffer, and the
attributes that look like modules or parameters but are not registered (plain lists of layers, tensors
with requires_grad kept as attributes), each with the source line that defines it where we can find it.
It also lists plain tensor attributes without requires_grad that sit on another device than the module
holding them ("stray_tensors": a table or mask kept as an attribute instead of a buffer, which .to() and
.to_empty() leave behind).
"""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

from .findings import location

_CONTAINERS = (list, tuple, set, frozenset, dict)
_SCAN_DEPTH = 3          # how deep to look inside plain containers for modules/tensors


def is_initialised(module: nn.Module) -> bool:
    """False for a module whose __init__ never ran nn.Module.__init__ (missing super().__init__())."""
    return "_parameters" in vars(module) and "_modules" in vars(module)


def structure_key(model: nn.Module, optimizers: Iterable = ()) -> list:
    """A cheap key of what the tree records that can change with no registration hook firing: modules
    and their training flags, attributes added to a module, each parameter's and buffer's identity,
    requires_grad, dtype, device and shape (.to() and .data = ... keep the tensor object), and the
    optimizers' parameter groups. Equal keys: the tree need not be re-taken (about 1/30 of the cost)."""
    parts: list = []
    for path, mod in named_modules(model):
        d = vars(mod)
        parts.append((path, id(mod), d.get("training"), len(d)))
        for store in ("_parameters", "_buffers"):
            for name, t in d.get(store, {}).items():
                if t is None or isinstance(t, nn.parameter.UninitializedTensorMixin):    # lazy: no shape
                    parts.append((name, id(t), type(t)))      # materialising changes its class in place
                else:
                    parts.append((name, id(t), t.requires_grad, t.dtype, t.device, t.shape))
    for opt in optimizers:
        for group in opt.param_groups:
            parts.append(tuple(id(p) for p in group["params"]))
    return parts


def named_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Like model.named_modules(), but survives modules that skipped nn.Module.__init__."""
    seen = set()
    stack = [("", model)]
    while stack:
        path, mod = stack.pop()
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        yield path, mod
        if is_initialised(mod):
            children = list(mod._modules.items())
            for name, child in reversed(children):
                if child is not None:
                    stack.append((f"{path}.{name}" if path else name, child))


def is_user_class(cls: type) -> bool:
    mod = getattr(cls, "__module__", "") or ""
    return not (mod.startswith("torch.") or mod == "torch" or mod.startswith("probes."))


@functools.lru_cache(maxsize=4096)
def class_location(cls: type) -> str | None:
    """'file:line' of a user class definition; None for PyTorch's own classes."""
    if not is_user_class(cls):
        return None
    try:
        file = inspect.getsourcefile(cls)
        _, line = inspect.getsourcelines(cls)
    except (TypeError, OSError):
        return None
    return location(file, line)


@functools.lru_cache(maxsize=4096)
def _attribute_lines(cls: type) -> dict[str, tuple[str, int]]:
    """attr -> (file, line) of the first `self.attr = ...` in the class body (and user base classes)."""
    found: dict[str, tuple[str, int]] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not is_user_class(klass):
            continue
        try:
            file = inspect.getsourcefile(klass)
            lines, first = inspect.getsourcelines(klass)
            tree = ast.parse(textwrap.dedent("".join(lines)))
        except (TypeError, OSError, SyntaxError):
            continue
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                            and sub.value.id == "self" and sub.attr not in found):
                        found[sub.attr] = (file, first + node.lineno - 1)
    return found


def attribute_location(cls: type, attr: str) -> str | None:
    hit = _attribute_lines(cls).get(attr)
    return location(*hit) if hit else class_location(cls)


def describe_module(module: nn.Module) -> str:
    """A short human label: 'Linear 64→4', 'Conv2d 3→32', else the class name."""
    cls = type(module).__name__
    if not is_initialised(module):
        return cls
    for a, b in (("in_features", "out_features"), ("in_channels", "out_channels"),
                 ("num_embeddings", "embedding_dim"), ("input_size", "hidden_size")):
        if hasattr(module, a) and hasattr(module, b):
            return f"{cls} {getattr(module, a)}→{getattr(module, b)}"
    return cls


def _optimizer_slots(optimizers: Sequence[torch.optim.Optimizer]) -> dict[int, tuple[int, int]]:
    slots = {}
    for oi, opt in enumerate(optimizers):
        for gi, group in enumerate(opt.param_groups):
            for p in group["params"]:
                slots.setdefault(id(p), (oi, gi))
    return slots


def _tensor_entry(name, module_path, t, kind, slots, shared) -> dict[str, Any]:
    lazy = isinstance(t, nn.parameter.UninitializedTensorMixin)
    slot = slots.get(id(t))
    return {
        "name": name,
        "module": module_path,
        "kind": kind,
        "shape": None if lazy else list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "device": str(t.device),
        "requires_grad": bool(t.requires_grad),
        "numel": 0 if lazy else int(t.numel()),
        "lazy": lazy,
        "optimizer": None if slot is None else slot[0],
        "param_group": None if slot is None else slot[1],
        "shared_with": [n for n in shared.get(id(t), ()) if n != name],
    }


def _walk_container(value, path: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(path, obj) for modules and tensors nested inside plain Python containers."""
    if depth > _SCAN_DEPTH:
        return
    if isinstance(value, (nn.Module, torch.Tensor)):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_container(v, f"{path}[{k!r}]", depth + 1)
    elif isinstance(value, _CONTAINERS):
        items = value if isinstance(value, (list, tuple)) else sorted(value, key=id)
        for i, v in enumerate(items):
            yield from _walk_container(v, f"{path}[{i}]", depth + 1)


@functools.lru_cache(maxsize=1024)
def _reads_mode(cls: type) -> bool:
    """Whether a module class's behaviour can depend on train()/eval(): a dropout, or a forward whose source
    mentions `training` (nn.RReLU, a DropPath, a custom noise layer). Unreadable source counts as yes."""
    if issubclass(cls, nn.modules.dropout._DropoutNd):
        return True
    forward = getattr(cls, "forward", None)
    if forward is None:
        return False
    try:
        return "training" in inspect.getsource(forward)
    except (TypeError, OSError):
        return True


def _matters(module: nn.Module) -> bool:
    """An unregistered module only goes wrong when it holds state (weights, buffers: not trained, moved or
    saved) or acts by the mode (eval() does not reach it): a stateless function wrapper kept in a dict is
    fine."""
    for sub in module.modules():
        if sub._parameters or sub._buffers or _reads_mode(type(sub)):
            return True
    return False


_MODULE_STATE = frozenset(vars(nn.Module()))      # what Module.__init__ sets: training, _parameters, hook dicts


def unregistered_attributes(path: str, module: nn.Module) -> list[dict[str, Any]]:
    """Attributes of one module that hold modules or trainable tensors without registering them."""
    out = []
    cls = type(module)
    private_too = is_user_class(cls)        # self._layers = [...] in the user's class is the same bug
    for attr, value in vars(module).items():
        if attr in _MODULE_STATE or (attr.startswith("_") and not private_too):
            continue                       # nn.Module's own state (_parameters, _modules, ...), library internals
        full = f"{path}.{attr}" if path else attr
        if isinstance(value, torch.Tensor) and not isinstance(value, nn.Module):
            # a leaf: a weight someone meant to train. A tensor computed from parameters (the weight that
            # legacy weight_norm rebuilds each forward, a kept output or hidden state) is not a parameter
            if (value.requires_grad and value.is_leaf) or isinstance(value, nn.Parameter):
                out.append({"path": full, "module": path, "attribute": attr, "container": "tensor",
                            "kind": "parameter", "count": 1, "items": [full],
                            "classes": [type(value).__name__], "numel": int(value.numel()),
                            "location": attribute_location(cls, attr)})
            continue
        if not isinstance(value, _CONTAINERS):
            continue
        hits = list(_walk_container(value, full))
        mods = [(p, o) for p, o in hits if isinstance(o, nn.Module)]
        if not any(_matters(o) for _, o in mods):
            mods = []
        params = [(p, o) for p, o in hits if isinstance(o, torch.Tensor) and o.requires_grad and o.is_leaf]
        for kind, group in (("module", mods), ("parameter", params)):
            if group:
                out.append({
                    "path": full, "module": path, "attribute": attr, "container": type(value).__name__,
                    "kind": kind, "count": len(group), "items": [p for p, _ in group],
                    "classes": sorted({type(o).__name__ for _, o in group}),
                    "numel": int(sum(t.numel() for _, o in group
                                     for t in (o.parameters() if isinstance(o, nn.Module) else [o])
                                     if not isinstance(t, nn.parameter.UninitializedTensorMixin))),
                    "location": attribute_location(cls, attr)})
    return out


def _home_device(tensors: Iterable[torch.Tensor | None]) -> str | None:
    """The device most of these tensors are on (ties: the last name in sort order, as the mixed-devices check
    decides); None if there are none."""
    counts: dict[str, int] = {}
    for t in tensors:
        if t is not None and not isinstance(t, nn.parameter.UninitializedTensorMixin):
            d = str(t.device)
            counts[d] = counts.get(d, 0) + 1
    return max(counts, key=lambda d: (counts[d], d)) if counts else None


def stray_tensors(path: str, module: nn.Module, home: str | None) -> list[dict[str, Any]]:
    """Plain tensor attributes of one module (not registered, no requires_grad) on another device than `home`.

    `home` is where the module's own parameters and buffers are (else the model's). A 0-dim CPU tensor
    is left out: PyTorch mixes it into any device's arithmetic as a Python number.
    Only what the attribute itself holds is looked at, so this costs one pass over vars(module).
    """
    if home is None:
        return []
    out = []
    for attr, value in vars(module).items():
        if not isinstance(value, torch.Tensor) or isinstance(value, nn.Parameter) or value.requires_grad:
            continue
        device = str(value.device)
        if device == home or (value.dim() == 0 and value.device.type == "cpu"):
            continue
        name = f"{path}.{attr}" if path else attr
        out.append({"name": name, "module": path, "attribute": attr, "shape": list(value.shape),
                    "dtype": str(value.dtype).replace("torch.", ""), "device": device, "home": home,
                    "location": attribute_location(type(module), attr)})
    return out


def snapshot(model: nn.Module, optimizers: Sequence[torch.optim.Optimizer] = ()) -> dict[str, Any]:
    """The registration tree of `model` as plain data."""
    slots = _optimizer_slots(optimizers)
    modules, tensors, unregistered, broken, strays = [], [], [], [], []
    all_mods = list(named_modules(model))
    # names under which each tensor is reachable: tied weights show up under several names
    shared: dict[int, list[str]] = {}
    for mpath, mod in all_mods:
        if not is_initialised(mod):
            continue
        for table in (mod._parameters, mod._buffers):
            for pname, t in table.items():
                if t is not None:
                    shared.setdefault(id(t), []).append(f"{mpath}.{pname}" if mpath else pname)
    seen_tensors = set()
    model_home = _home_device(t for _, m in all_mods if is_initialised(m)
                              for table in (m._parameters, m._buffers) for t in table.values())
    for mpath, mod in all_mods:
        cls = type(mod)
        entry = {"path": mpath, "class": cls.__name__, "label": describe_module(mod),
                 "location": class_location(cls), "initialised": is_initialised(mod)}
        if not entry["initialised"]:
            entry.update(training=None, params=0, children=0)
            modules.append(entry)
            broken.append({"path": mpath, "class": cls.__name__, "location": init_location(cls)})
            continue
        own = 0
        for kind, table in (("parameter", mod._parameters), ("buffer", mod._buffers)):
            for pname, t in table.items():
                if t is None:
                    continue
                name = f"{mpath}.{pname}" if mpath else pname
                item = _tensor_entry(name, mpath, t, kind, slots, shared)
                item["duplicate"] = id(t) in seen_tensors     # a tied weight's second name
                seen_tensors.add(id(t))
                tensors.append(item)
                if kind == "parameter" and not item["duplicate"]:
                    own += item["numel"]
        entry.update(training=bool(mod.training), params=own, children=len(mod._modules))
        modules.append(entry)
        unregistered.extend(unregistered_attributes(mpath, mod))
        home = _home_device([*mod._parameters.values(), *mod._buffers.values()]) or model_home
        strays.extend(stray_tensors(mpath, mod, home))
    # optimizer tensors that the model no longer holds
    model_ids = {id(t) for _, m in all_mods if is_initialised(m) for t in m._parameters.values() if t is not None}
    foreign = [{"optimizer": oi, "param_group": gi, "shape": list(p.shape)}
               for oi, opt in enumerate(optimizers) for gi, g in enumerate(opt.param_groups)
               for p in g["params"] if id(p) not in model_ids]
    return {"model": type(model).__name__, "modules": modules, "tensors": tensors,
            "unregistered": unregistered, "uninitialised": broken, "optimizer_only": foreign,
            "n_optimizers": len(optimizers), "stray_tensors": strays}


@functools.lru_cache(maxsize=4096)
def init_location(cls: type) -> str | None:
    """'file:line' of the class's own `def __init__` (where super().__init__() belongs), else the class."""
    init = vars(cls).get("__init__")
    if init is not None and is_user_class(cls):
        try:
            return location(inspect.getsourcefile(init), inspect.getsourcelines(init)[1])
        except (TypeError, OSError):
            pass
    return class_location(cls)
