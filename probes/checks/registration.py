"""Registration checks: layers and weights that the model holds but PyTorch does not know about."""
from __future__ import annotations

from ..findings import Finding


def _owner(module_path: str) -> str:
    return f"Module {module_path}" if module_path else "The model"


def unregistered_modules(tree: dict) -> list[Finding]:
    found = []
    for item in tree["unregistered"]:
        if item["kind"] != "module":
            continue
        container = item["container"]
        wrapper = "nn.ModuleDict" if container == "dict" else "nn.ModuleList"
        found.append(Finding(
            code="unregistered-module", severity="error",
            title=f"{item['path']} is a plain {container} of {item['count']} module(s): PyTorch cannot see them",
            detail=(f"{_owner(item['module'])} keeps {item['count']} {'/'.join(item['classes'])} module(s) in a "
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
            code="unregistered-parameter", severity="error", title=title,
            detail=(f"{_owner(item['module'])} holds {item['numel']:,} trainable value(s) that are not registered: "
                    f"gradients may reach them, but model.parameters() does not list them, so the optimizer "
                    f"never updates them, .to(device) leaves them behind and state_dict() does not save them."),
            module=item["module"], location=item["location"],
            evidence={"attribute": item["path"], "container": item["container"], "count": item["count"],
                      "items": item["items"][:20], "numel": item["numel"]},
            fix=fix))
    return found


def missing_super_init(tree: dict) -> list[Finding]:
    return [missing_super_init_finding(item["class"], item["path"], item["location"])
            for item in tree.get("uninitialised", [])]


def missing_super_init_finding(cls_name: str, module: str | None, location: str | None,
                               error: str | None = None) -> Finding:
    evidence = {"class": cls_name}
    if error:
        evidence["error"] = error
    return Finding(
        code="missing-super-init", severity="error",
        title=f"{cls_name}.__init__ does not call super().__init__() first",
        detail=(f"nn.Module.__init__ never ran for {cls_name}, so it has no parameter, buffer or submodule "
                f"registry: assigning a layer fails, or the module silently holds nothing PyTorch can train."),
        module=module, location=location, evidence=evidence,
        fix=f"Make super().__init__() the first line of {cls_name}.__init__.")
