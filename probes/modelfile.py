"""Load a user's model file and work out how to train it: the model, batches, loss and optimizer.

The file needs nothing special. Optional module-level names:
  build_model() -> nn.Module             make_batch(batch_size) -> (inputs, targets)
  make_loader() -> iterable of batches   loss_fn(outputs, targets) -> scalar
  make_optimizer(model) -> optimizer     train_step(model, batch, optimizer, loss_fn) -> loss
  eval_step(model, batch)
Runs only inside the worker process (probes.worker): it executes the user's code.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from .errors import UserCodeError
from .findings import location
from .tree import describe_module, is_initialised, named_modules

HOOK_NAMES = ("build_model", "make_batch", "make_loader", "loss_fn", "make_optimizer", "train_step", "eval_step")
TOKENS = 16          # sequence length for inferred token inputs
SPATIAL = 32         # side of inferred image inputs


def load_module(path: Path) -> types.ModuleType:
    """Import the file as a fresh module (its folder on sys.path, so sibling imports work)."""
    if not path.exists():
        raise UserCodeError(f"{path}: no such file")
    if path.is_dir():
        raise UserCodeError(f"{path}: is a folder; give the path of a .py file")
    if path.suffix != ".py":
        raise UserCodeError(f"{path}: not a Python file (expected a .py file)")
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserCodeError(f"{path}: not a Python source file (not UTF-8 text: {e.reason} at byte {e.start})")
    sys.path.insert(0, str(path.parent.resolve()))
    name = "forgescope_user_" + "".join(c if c.isalnum() else "_" for c in path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _builds_without_arguments(cls: type) -> bool:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in sig.parameters.values())


def model_classes(module: types.ModuleType) -> list[type]:
    """nn.Module subclasses defined in the file itself (not imported into it), in file order."""
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__]
    return sorted(found, key=lambda c: getattr(c, "__firstlineno__", None) or _first_line(c))


def _first_line(cls: type) -> int:
    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return 0


def model_factory(module: types.ModuleType, path: Path, name: str | None) -> tuple[str, Callable[[], nn.Module]]:
    """(label, zero-argument callable that builds the model)."""
    if name:
        obj = getattr(module, name, None)
        if obj is None or not callable(obj):
            choices = ", ".join(c.__name__ for c in model_classes(module)) or "none"
            raise UserCodeError(f"{path}: --model {name}: no class or function of that name "
                                f"(nn.Module classes in the file: {choices})")
        return name, obj
    if callable(getattr(module, "build_model", None)):
        return "build_model()", module.build_model
    classes = model_classes(module)
    candidates = [c for c in classes if _builds_without_arguments(c)]
    if len(candidates) > 1:
        # an Encoder and the Model that uses it: the model is the class no other class of the file refers to
        outer = _outermost(candidates, classes, path)
        roots = (_with_parameters(outer) or outer) if len(outer) > 1 else outer   # a loss module trains nothing
        if len(roots) == 1:
            return roots[0].__name__, roots[0]
        if len(roots) < len(candidates):
            used = [c.__name__ for c in candidates if c not in outer]
            empty = [c.__name__ for c in outer if c not in roots]
            considered = "; ".join(part for part in (
                f"{', '.join(used)} used by another class" if used else "",
                f"{', '.join(empty)} without parameters" if empty else "") if part)
            raise UserCodeError(f"{path}: several models build without arguments and none uses the others "
                                f"({', '.join(c.__name__ for c in roots)}; also considered: {considered}); "
                                f"pick one with --model NAME or define build_model()")
    if len(candidates) == 1:
        return candidates[0].__name__, candidates[0]
    if not classes:
        raise UserCodeError(f"{path}: no model found: define build_model() or an nn.Module subclass in the file")
    if not candidates:
        listed = ", ".join(f"{c.__name__}{inspect.signature(c)}" for c in classes)
        raise UserCodeError(f"{path}: no model found that builds without arguments ({listed}); "
                            f"define build_model() that returns the model")
    listed = ", ".join(c.__name__ for c in candidates)
    raise UserCodeError(f"{path}: several models build without arguments ({listed}); "
                        f"pick one with --model NAME or define build_model()")


def _outermost(candidates: list[type], classes: list[type], path: Path) -> list[type]:
    """The candidates that no other nn.Module class of the file names in its body (read from the source)."""
    import ast
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return candidates
    names = {c.__name__ for c in classes}
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in names:
            for inner in ast.walk(node):
                ref = inner.id if isinstance(inner, ast.Name) else inner.attr if isinstance(inner, ast.Attribute) \
                    else None
                if ref in names and ref != node.name:
                    used.add(ref)
    return [c for c in candidates if c.__name__ not in used]


def _with_parameters(classes: list[type]) -> list[type]:
    """Those whose instance has parameters (each built once; one that fails to build is kept)."""
    keep = []
    state = torch.random.get_rng_state()
    for cls in classes:
        try:
            if any(True for _ in cls().parameters()):
                keep.append(cls)
        except Exception:       # noqa: BLE001 - building it for real will say what is wrong
            keep.append(cls)
    torch.random.set_rng_state(state)
    return keep


# -- inputs, targets, loss ------------------------------------------------------------------------
# layers whose parameters say what input they take (see infer_inputs)
_INPUT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.RNN, nn.LSTM, nn.GRU, nn.LayerNorm,
                 nn.BatchNorm1d)


def first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first registered layer that takes the input: the first one of a kind infer_inputs knows, else the
    first module holding parameters (a model's own parameter, e.g. a scale, says nothing about its input)."""
    holding = [(path, mod) for path, mod in named_modules(model)
               if is_initialised(mod) and any(p is not None for p in mod._parameters.values())]
    for path, mod in holding:
        if isinstance(mod, _INPUT_LAYERS):
            return path, mod
    return holding[0] if holding else None


def infer_inputs(model: nn.Module, batch_size: int) -> Any:
    """Inputs the first layer accepts: Linear -> (B, in), ConvNd -> (B, C, 32...), Embedding -> tokens."""
    found = first_layer(model)
    advice = "define make_batch(batch_size) returning (inputs, targets) in the model file"
    if found is None:
        raise UserCodeError(f"cannot infer inputs: the model has no parameters; {advice}")
    path, layer = found
    label = f"{path or 'the model'} ({describe_module(layer)})"
    b = batch_size
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in layer.parameters(recurse=False)):
        raise UserCodeError(f"cannot infer inputs for the lazy first layer {label}; {advice}")
    if isinstance(layer, nn.Linear):
        return torch.randn(b, layer.in_features)
    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        dims = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(layer)]
        return torch.randn(b, layer.in_channels, *[SPATIAL] * dims)
    if isinstance(layer, nn.Embedding):
        return torch.randint(0, layer.num_embeddings, (b, TOKENS))
    if isinstance(layer, (nn.RNN, nn.LSTM, nn.GRU)):
        shape = (b, TOKENS, layer.input_size) if layer.batch_first else (TOKENS, b, layer.input_size)
        return torch.randn(*shape)
    if isinstance(layer, nn.LayerNorm):
        return torch.randn(b, *layer.normalized_shape)
    if isinstance(layer, (nn.BatchNorm1d,)):
        return torch.randn(b, layer.num_features)
    raise UserCodeError(f"cannot infer inputs from the first layer {label}; {advice}")


def class_dim(out: torch.Tensor) -> int:
    """Where the classes are in a logits tensor: (B, C) -> 1, (B, T, V) -> 2, (B, C, H, W...) -> 1."""
    return 2 if out.dim() == 3 else 1


def first_output_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    logits = getattr(out, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else None


def infer_targets(out: torch.Tensor) -> torch.Tensor:
    """Class indices for class logits (float, a class dim of size >= 2), else a regression target."""
    if out.is_floating_point() and out.dim() >= 2 and out.shape[class_dim(out)] >= 2:
        d = class_dim(out)
        shape = out.shape[:d] + out.shape[d + 1:]
        return torch.randint(0, out.shape[d], tuple(shape), device=out.device)
    return torch.randn(out.shape, device=out.device, dtype=out.dtype if out.is_floating_point() else torch.float32)


def default_loss(outputs: Any, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class logits with integer targets, mean squared error otherwise."""
    out = first_output_tensor(outputs)
    if out is None:
        raise UserCodeError(f"the model returned {type(outputs).__name__}, not a tensor: "
                            f"define loss_fn(outputs, targets) in the model file")
    if not targets.is_floating_point() and out.is_floating_point():
        d = class_dim(out) if targets.dim() == out.dim() - 1 else 1
        return F.cross_entropy(out.movedim(d, 1) if d != 1 else out, targets)
    return F.mse_loss(out, targets.to(out.dtype))


def call_model(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def split_batch(batch: Any, source: str) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise UserCodeError(f"{source} must give (inputs, targets), got {_kind(batch)}")


def _kind(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserCodeError("--device cuda: no CUDA device is available on this machine (try --device auto)")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserCodeError("--device mps: MPS is not available on this machine (try --device auto)")
    return torch.device(requested)


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@dataclass
class UserHooks:
    """The optional functions the model file defines."""
    make_batch: Callable | None = None
    make_loader: Callable | None = None
    loss_fn: Callable | None = None
    make_optimizer: Callable | None = None
    train_step: Callable | None = None
    eval_step: Callable | None = None

    @classmethod
    def from_module(cls, module: types.ModuleType) -> "UserHooks":
        return cls(**{name: getattr(module, name) for name in HOOK_NAMES[1:]
                      if callable(getattr(module, name, None))})


def def_location(fn, fallback=None) -> str:
    """'file:line' of the `def` of a user function (a hook, forward), for messages about what it returned."""
    code = getattr(inspect.unwrap(fn), "__code__", None) if callable(fn) else None
    if code is None:
        return str(fallback) if fallback is not None else getattr(fn, "__name__", repr(fn))
    return location(code.co_filename, code.co_firstlineno)
