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

from .detectors import state_dict_mismatch
from .detectors.state_dict_mismatch import CODE, LISTED  # noqa: F401 - the code this module reports
from .errors import UserCodeError
from .findings import Finding

# where training scripts usually keep the model's weights inside a checkpoint dict, most likely first
MODEL_KEYS = ("state_dict", "model_state_dict", "model", "model_state", "net", "network", "module", "weights")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")        # DataParallel/DDP; torch.compile


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
        return None, state_dict_mismatch.refused(what, str(e).splitlines()[0][:300], str(path))
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
        return [state_dict_mismatch.no_state_dict(kinds, others, str(path))], held
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
    return [state_dict_mismatch.mismatch(str(path), key, others, prefix, missing, unexpected, shapes, dtypes)], held


def _wrapper_prefix(state: Mapping[str, Any], model_state: Mapping[str, Any]) -> str | None:
    """A prefix every checkpoint key carries and the model's keys do not (a wrapper's attribute name)."""
    for prefix in WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_state):
            return prefix
    return None
