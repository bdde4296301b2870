"""unregistered-parameter: trainable tensors kept as plain attributes (or in a plain list/dict of Parameters).

A tree check: the registration tree (probes/tree.py) lists them under "unregistered".
"""
from __future__ import annotations

from ..findings import Finding
from ._common import owner

CODE = "unregistered-parameter"


def unregistered_parameters(tree: dict) -> list[Finding]:
    found = []
    for item in tree["unregistered"]:
        if item["kind"] != "parameter":
            continue
        if item["container"] == "tensor":
            title = f"{item['path']} is a tensor with requires_grad=True, not an nn.Parameter"
            fix = (f"self.{item['attribute']} = nn.Parameter(...) to train it, or "
                   f"self.register_buffer('{item['attribute']}', ...) for a constant that must follow .to().")
        else:
            wrapper = "nn.ParameterDict" if item["container"] == "dict" else "nn.ParameterList"
            title = f"{item['path']} is a plain {item['container']} of {item['count']} trainable tensor(s)"
            fix = f"Wrap it: self.{item['attribute']} = {wrapper}(...)."
        found.append(Finding(
            code=CODE, severity="error", title=title,
            detail=(f"{owner(item['module'])} holds {item['numel']:,} trainable value(s) that are not registered: "
                    f"gradients may reach them, but model.parameters() does not list them, so the optimizer "
                    f"never updates them, .to(device) leaves them behind and state_dict() does not save them."),
            module=item["module"], location=item["location"],
            evidence={"attribute": item["path"], "container": item["container"], "count": item["count"],
                      "items": item["items"][:20], "numel": item["numel"]},
            fix=fix))
    return found
