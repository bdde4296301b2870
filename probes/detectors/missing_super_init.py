"""missing-super-init: an nn.Module subclass whose __init__ does not call super().__init__() first.

Seen two ways: the registration tree lists modules that never ran nn.Module.__init__ (a tree check), and the
check worker names the class when building the model fails on it (probes/construction.py).
"""
from __future__ import annotations

from ..findings import Finding

CODE = "missing-super-init"


def missing_super_init(tree: dict) -> list[Finding]:
    return [finding(item["class"], item["path"], item["location"]) for item in tree.get("uninitialised", [])]


def finding(cls_name: str, module: str | None, location: str | None, error: str | None = None,
            **more: object) -> Finding:
    """`error`: what building the model raised; `more`: further evidence (failed_at, the line it raised at)."""
    evidence = {"class": cls_name}
    if error:
        evidence["error"] = error
    evidence.update(more)
    return Finding(
        code=CODE, severity="error",
        title=f"{cls_name}.__init__ does not call super().__init__() first",
        detail=(f"nn.Module.__init__ never ran for {cls_name}, so it has no parameter, buffer or submodule "
                f"registry: assigning a layer fails, or the module silently holds nothing PyTorch can train."),
        module=module, location=location, evidence=evidence,
        fix=f"Make super().__init__() the first line of {cls_name}.__init__.")
