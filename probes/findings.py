"""Findings: what a check says is wrong, as plain data (no tensors, no modules)."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    code: str                    # public, stable: e.g. "unregistered-module"
    severity: str                # error | warning | info
    title: str                   # one line
    detail: str                  # what happened and why it matters
    module: str | None = None    # dotted module path ("" is the model itself)
    location: str | None = None  # "file:line"
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding({self.code}): severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> tuple:
        """Two findings with the same key say the same thing (used to report each once)."""
        return (self.code, self.module, self.location, self.title)


def location(file: str | None, line: int | None) -> str | None:
    """'file:line', the file relative to the working directory when it lies below it."""
    if not file:
        return None
    try:
        rel = os.path.relpath(file)
        if not rel.startswith(".."):
            file = rel
    except ValueError:          # another drive on Windows
        pass
    return f"{file}:{line}" if line else file


def has_errors(findings) -> bool:
    return any((f["severity"] if isinstance(f, dict) else f.severity) == "error" for f in findings)


def explained_elsewhere(finding: dict, others: list[dict]) -> bool:
    """One bug, one finding: is this finding only a consequence of another one in `others`?

    The parameters of a layer built inside forward are, of course, in no optimizer: when every parameter a
    param-not-in-optimizer finding names belongs to a layer that layer-created-in-forward reported (by the
    name it was assigned to), that finding says why, and this one is not repeated."""
    if finding.get("code") == "gradient-chain-broken" and (finding.get("evidence") or {}).get("no_graph"):
        # a loss without a graph is explained by the cut in forward that made it, when that was seen
        return any(o.get("code") == "gradient-chain-broken" and (o.get("evidence") or {}).get("op")
                   for o in others)
    if finding.get("code") == "optimizer-not-stepping" and "pattern" not in (finding.get("evidence") or {}):
        # the end-of-run verdict repeats what the Probe saw live (zero_grad and backward, never a step)
        return any(o.get("code") == "optimizer-not-stepping" and "pattern" in (o.get("evidence") or {})
                   for o in others)
    if finding.get("code") == "memory-growth":
        # the RSS slope (a run check) repeats what the kept autograd graphs already said, later
        return "kept_steps" not in (finding.get("evidence") or {}) and any(
            o.get("code") == "memory-growth" and "kept_steps" in (o.get("evidence") or {}) for o in others)
    if finding.get("code") != "param-not-in-optimizer":
        return False
    layers = [o.get("evidence") or {} for o in others if o.get("code") == "layer-created-in-forward"]
    built = [e["registered_as"] for e in layers if e.get("registered_as")]
    evidence = finding.get("evidence") or {}
    if "tensors" in evidence:
        # the optimizer holds tensors the model no longer has: the copy of that layer from a forward that ran
        # before the optimizer was built, replaced by every later forward (same number of values)
        stale = evidence["tensors"]
        held = sum(math.prod(t.get("shape") or [0]) for t in stale)
        made = sum(int(e.get("numel") or 0) for e in layers if e.get("registered_as"))
        return bool(built) and evidence.get("count", len(stale)) == len(stale) and held == made
    names = [p.get("name", "") for p in evidence.get("parameters", [])]
    return bool(built and names) and all(any(n == b or n.startswith(b + ".") for b in built) for n in names)


def notes(not_recorded: dict[str, str] | None, not_watched: list[str] | None) -> list[str]:
    """What a report says about the parts of a run the Probe could not record or watch, one sentence each."""
    said = [f"{name} was not recorded: ForgeScope failed on it ({why}); training was not affected and the "
            f"rest was checked." for name, why in (not_recorded or {}).items()]
    return said + list(not_watched or [])
