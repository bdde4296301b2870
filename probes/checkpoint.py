"""The checkpoint doctor: does this checkpoint load into this model, and if not, exactly why.

`python -m probes checkpoint MODEL_FILE CHECKPOINT`: the worker builds the model from the file, then reads
the checkpoint with `torch.load(..., weights_only=True)` only — a file that needs arbitrary pickled code
(a whole pickled model, custom classes) is refused and explained, never executed — and compares it with
`model.state_dict()`: missing and unexpected keys, shapes, dtypes, a `module.` prefix left by
DataParallel/DDP, the model's part of a training checkpoint (optimizer, epoch, ...).
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import UserCodeError
from .findings import Finding

CODE = "state-dict-mismatch"
# where training scripts usually keep the model's weights inside a checkpoint dict, most likely first
MODEL_KEYS = ("state_dict", "model_state_dict", "model", "model_state", "net", "network", "module", "weights")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")        # DataParallel/DDP; torch.compile
LISTED = 20                                         # keys named in a finding's evidence, per kind


def load_checkpoint(path: Path) -> tuple[Any, Finding | None]:
    """(the loaded object, None), or (None, a finding) when the file needs code to load."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True), None
    except pickle.UnpicklingError as e:
        needed = re.search(r"GLOBAL ([\w.]+)", str(e))
        if needed is None:          # not a refusal of some class or function: not a torch.save file at all
            reason = next((ln.strip() for ln in str(e).splitlines()[2:] if ln.strip() and "WeightsUnpickler"
                           not in ln and "Check the documentation" not in ln), str(e).splitlines()[0])
            raise UserCodeError(f"{path}: not a PyTorch checkpoint ({reason[:200]})", str(path)) from e
        what = needed[1]
        return None, Finding(
            code=CODE, severity="error",
            title=f"The checkpoint needs {what or 'pickled Python code'} to load: refused, not run",
            detail=("This file is not only tensors: loading it would unpickle and run Python code "
                    f"({what or 'a custom object'}), which can do anything — so it was not loaded. Usually it "
                    "is a whole model saved with torch.save(model) instead of its state_dict, which also breaks "
                    "as soon as the class or its file moves."),
            module=None, location=str(path),
            evidence={"refused": what, "reason": str(e).splitlines()[0][:300]},
            fix=("Save the weights, not the object: torch.save(model.state_dict(), path), and load with "
                 "model.load_state_dict(torch.load(path, weights_only=True)). For a file you trust and made "
                 "yourself, load it once with weights_only=False and save its state_dict()."))
    except OSError as e:
        raise UserCodeError(f"{path}: cannot read the checkpoint ({e})", str(path)) from e
    except Exception as e:      # noqa: BLE001 - weights_only runs no code: whatever failed, the file is not one
        raise UserCodeError(f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {str(e)[:200]})",
                            str(path)) from e


def _is_state(value: Any) -> bool:
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


def find_state_dict(obj: Any) -> tuple[Mapping[str, torch.Tensor] | None, str, list[str]]:
    """(the model's tensors, the key they were under ('' at the top), the checkpoint's other keys)."""
    if _is_state(obj):
        return obj, "", []
    if not isinstance(obj, Mapping):
        return None, "", []
    candidates = {k: v for k, v in obj.items() if isinstance(k, str) and _is_state(v)}
    if not candidates:
        return None, "", [str(k) for k in obj]
    key = next((k for k in MODEL_KEYS if k in candidates), None) or max(candidates, key=lambda k: len(candidates[k]))
    return candidates[key], key, [str(k) for k in obj if k != key]


def compare(model_state: Mapping[str, torch.Tensor], obj: Any, path: Path) -> tuple[list[Finding], dict]:
    """Findings (none when the checkpoint loads cleanly) and what the checkpoint holds."""
    state, key, others = find_state_dict(obj)
    held = {"found_under": key or None, "other_keys": others[:LISTED],
            "tensors": len(state) if state is not None else 0}
    if state is None:
        kinds = type(obj).__name__ if not isinstance(obj, Mapping) else f"a dict of {', '.join(others[:8])}"
        return [Finding(code=CODE, severity="error", title="No state_dict in the checkpoint",
                        detail=f"The checkpoint holds {kinds}, and no mapping of names to tensors.",
                        module=None, location=str(path), evidence={"holds": others[:LISTED]},
                        fix="Save model.state_dict() (alone, or under a key such as 'model').")], held
    prefix = _wrapper_prefix(state, model_state)
    if prefix:
        state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    shapes = [{"key": k, "model": list(model_state[k].shape), "checkpoint": list(v.shape)}
              for k, v in state.items() if k in model_state and tuple(v.shape) != tuple(model_state[k].shape)]
    dtypes = [{"key": k, "model": str(model_state[k].dtype).removeprefix("torch."),
               "checkpoint": str(v.dtype).removeprefix("torch.")}
              for k, v in state.items() if k in model_state and v.dtype != model_state[k].dtype
              and tuple(v.shape) == tuple(model_state[k].shape)]
    if not (prefix or missing or unexpected or shapes or dtypes):
        return [], held
    load = f"checkpoint[{key!r}]" if key else "checkpoint"
    steps, parts = [], []
    if key:
        steps.append(f"the weights are under {key!r}: model.load_state_dict({load})")
    if prefix:
        parts.append(f"every key starts with {prefix!r}")
        steps.append(f"drop the prefix: state = {{k.removeprefix({prefix!r}): v for k, v in {load}.items()}} "
                     f"(or save model.module.state_dict() when the model is wrapped)")
    if missing:
        parts.append(f"{len(missing)} key(s) of the model are missing")
    if unexpected:
        parts.append(f"{len(unexpected)} key(s) are not in the model")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es)")
        steps.append("build the model with the configuration the checkpoint was trained with (sizes, vocabulary, "
                     "number of classes), or drop those keys and load with strict=False to fine-tune")
    if dtypes:
        parts.append(f"{len(dtypes)} dtype difference(s)")
    if (missing or unexpected) and not shapes:
        steps.append("check the model's version against the checkpoint's; strict=False loads the rest, but the "
                     "missing ones stay at their random initial values")
    fatal = bool(missing or unexpected or shapes)
    title = ("The checkpoint does not load into this model: " if fatal or prefix else
             "The checkpoint loads, with dtype differences: ") + "; ".join(parts)
    return [Finding(
        code=CODE, severity="error" if fatal or prefix else "warning", title=title,
        detail=("model.load_state_dict() would fail (strict) or leave weights untrained (strict=False). "
                if fatal or prefix else
                "load_state_dict copies each tensor into the model's own dtype, so it loads: a value saved in "
                "a wider type is rounded, one saved in a narrower type keeps the precision it lost. ")
        + (f"The model's weights were found under {key!r}; the file also holds "
           f"{', '.join(others[:8]) or 'nothing else'}." if key else ""),
        module=None, location=str(path),
        evidence={"missing": missing[:LISTED], "unexpected": unexpected[:LISTED], "shape": shapes[:LISTED],
                  "dtype": dtypes[:LISTED], "prefix": prefix, "found_under": key or None,
                  "other_keys": others[:LISTED], "counts": {"missing": len(missing), "unexpected": len(unexpected),
                                                            "shape": len(shapes), "dtype": len(dtypes)}},
        fix=("; ".join(steps) if steps else
             "Nothing to do if the model's dtype is the one you train in; to run in the checkpoint's dtype, cast "
             "the model after loading (e.g. model.half()).")
    )], held


def _wrapper_prefix(state: Mapping[str, Any], model_state: Mapping[str, Any]) -> str | None:
    """A prefix every checkpoint key carries and the model's keys do not (a wrapper's attribute name)."""
    for prefix in WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_state):
            return prefix
    return None
