"""unregistered-module: layers kept in a plain list/dict/tuple/set attribute, which PyTorch cannot see.

A tree check: the registration tree (probes/tree.py) lists such containers under "unregistered".
"""
from __future__ import annotations

from ..findings import Finding
from ._common import owner

CODE = "unregistered-module"


def unregistered_modules(tree: dict) -> list[Finding]:
    found = []
    for item in tree["unregistered"]:
        if item["kind"] != "module":
            continue
        container = item["container"]
        wrapper = "nn.ModuleDict" if container == "dict" else "nn.ModuleList"
        found.append(Finding(
            code=CODE, severity="error",
            title=f"{item['path']} is a plain {container} of {item['count']} module(s): PyTorch cannot see them",
            detail=(f"{owner(item['module'])} keeps {item['count']} {'/'.join(item['classes'])} module(s) in a "
                    f"Python {container}. They run in forward, but they are not in model.parameters() "
                    f"({item['numel']:,} weights), so the optimizer never updates them, .to(device) does not "
                    f"move them and state_dict() does not save them."),
            module=item["module"], location=item["location"],
            evidence={"attribute": item["path"], "container": container, "count": item["count"],
                      "items": item["items"][:20], "classes": item["classes"], "numel": item["numel"]},
            fix=(f"Wrap it: self.{item['attribute']} = {wrapper}(...) instead of a plain {container}"
                 + (" (a tuple or set also becomes an nn.ModuleList)" if container in ("tuple", "set", "frozenset")
                    else "") + ".")))
    return found
