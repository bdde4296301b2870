"""Findings: what a check says is wrong, as plain data (no tensors, no modules).

Each code's findings are built in its own module of probes/detectors (listed in probes/catalog.py); which
finding only repeats another is said there too (probes.detectors.explained_elsewhere).
"""
from __future__ import annotations

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


def notes(not_recorded: dict[str, str] | None, not_watched: list[str] | None) -> list[str]:
    """What a report says about the parts of a run the Probe could not record or watch, one sentence each."""
    said = [f"{name} was not recorded: ForgeScope failed on it ({why}); training was not affected and the "
            f"rest was checked." for name, why in (not_recorded or {}).items()]
    return said + list(not_watched or [])
