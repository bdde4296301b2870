"""What a check is asked to do and what it answers: the one definition of both, and of every default.

`CheckConfig` is a check's settings. The command line's flags, `run_check()` and `CheckJob`, the dashboard's
widgets and the worker all take their defaults from it (`CHECK_DEFAULTS`; the Probe's own cadences are
`probes.DEFAULTS`). The job writes it to the worker's config file (`to_json()`); the worker reads it back
(`from_json()`), refusing a key it does not know, one it needs and lacks, or a value of the wrong type, with a
message that names it.

`CheckResult` is what the worker writes to its result file and a job returns (`to_dict()`/`from_dict()`);
`check --json` prints its PUBLIC_FIELDS. Plain data, no torch: the command line and the dashboard import it.
"""
from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

DEVICES = ("auto", "cpu", "cuda", "mps")
# what `check --json` prints, in this order; the rest of a result is for the text report and the dashboard
PUBLIC_FIELDS = ("model", "device", "steps", "run_dir", "error", "findings")


class ContractError(ValueError):
    """A config or result without the contract's shape: an unknown key, a missing one, a value of the wrong type."""


@dataclass
class CheckConfig:
    """One check of a model file (or, with `checkpoint`, one checkpoint doctor run)."""

    model_file: str                     # the .py file defining the model
    steps: int = 20                     # training steps
    batch_size: int = 8                 # passed to make_batch(), and the size of inferred inputs
    device: str = "auto"                # one of DEVICES; auto: cuda, then mps, then cpu
    model: str | None = None            # the class or function to build when the file has several
    run_dir: str = "runs"               # where the run log goes
    run_name: str | None = None         # the run log's folder name (default: the Probe's own)
    timeout: float = 120.0              # seconds before the check is stopped (importing torch included)
    compile_check: bool = False         # also run torch._dynamo.explain on a copy of the trained model
    checkpoint: str | None = None       # the doctor: the file to compare with the model (nothing is trained)
    seed: int = 0                       # torch.manual_seed before the model is built
    # filled in by the job as it starts the worker
    deadline: float | None = None       # time.time() by which the worker must be done (it times its hang dump)
    result_file: str | None = None      # where the worker writes its CheckResult
    fault_file: str | None = None       # where faulthandler writes a crash's or a hang's stack
    run_file: str | None = None         # where the worker names its run log as soon as it opens it

    def __post_init__(self):
        for name in ("model_file", "run_dir", "checkpoint", "result_file", "fault_file", "run_file"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, os.fspath(value))
        _check_types(self, "the check config")
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ContractError(f"the check config: {name} must be at least 1, got {getattr(self, name)}")
        if not self.timeout > 0:
            raise ContractError(f"the check config: timeout must be more than 0 seconds, got {self.timeout}")
        if self.device not in DEVICES:
            raise ContractError(f"the check config: device must be one of {', '.join(DEVICES)}, "
                                f"got {self.device!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "CheckConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ContractError(f"the check config is not JSON ({e})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> "CheckConfig":
        return cls(**_known_keys(cls, data, "the check config"))


@dataclass
class CheckResult:
    """What a check found, or why it could not finish."""

    model: str | None = None            # the model's class name, once it is built
    device: str | None = None           # where it trained
    steps: int = 0                      # training steps recorded
    run_dir: str | None = None          # the run log, once the Probe opened it
    error: str | None = None            # why the check could not finish: `file:line in function: message`
    findings: list[dict] = field(default_factory=list)     # Finding.to_dict()s
    error_location: str | None = None   # the `file:line` of the error, when it has one
    stage: str | None = None            # the worker's stage the check failed or stopped in (worker.STAGES)
    notes: list[str] | None = None      # what the Probe could not record or watch
    checkpoint: dict | None = None      # the doctor: what the checkpoint holds

    def __post_init__(self):
        _check_types(self, "the check result")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "CheckResult":
        return cls(**_known_keys(cls, data, "the check result"))

    def public(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PUBLIC_FIELDS}


def _known_keys(cls: type, data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ContractError(f"{what} must be a JSON object, got {type(data).__name__}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ContractError(f"{what} has unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                            f"(known: {', '.join(known)})")
    missing = [f.name for f in fields(cls)
               if f.default is MISSING and f.default_factory is MISSING and f.name not in data]
    if missing:
        raise ContractError(f"{what} has no {', '.join(missing)}")
    return data


def _check_types(obj: Any, what: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        if not _is_a(value, hints[f.name]):
            raise ContractError(f"{what}: {f.name} must be {_type_name(hints[f.name])}, got {value!r}")


def _is_a(value: Any, hint: Any) -> bool:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_is_a(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    kind = typing.get_origin(hint) or hint
    if isinstance(value, bool) and kind is not bool:        # True is an int to Python, not a step count
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _type_name(hint: Any) -> str:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "null"
    kind = typing.get_origin(hint) or hint
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list", dict: "an object"}.get(kind, kind.__name__)


# every default, for whoever shows one or passes one on: CHECK_DEFAULTS.steps, CHECK_DEFAULTS.timeout, ...
CHECK_DEFAULTS = CheckConfig(model_file="")
