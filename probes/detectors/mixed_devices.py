"""mixed-devices: one module's tensors on different devices, or a module called with an input on another device.

Two emitters: the run check over the registration tree (a module's parameters and buffers split across
devices, a plain tensor attribute that .to() / .to_empty() left behind), and `called_across_devices`, for
the watcher that sees a module called with an input elsewhere (probes/watchers/mixed_devices.py).
"""
from __future__ import annotations

from ..findings import Finding
from ._common import module_location, module_order, names as _names
from .base import RunData

CODE = "mixed-devices"


def mixed_devices(data: RunData) -> list[Finding]:
    tree = data.tree
    if not tree:
        return []
    by_module: dict[str, dict[str, list[str]]] = {}
    for t in tree.get("tensors", []):
        if t.get("duplicate") or t.get("lazy"):
            continue
        by_module.setdefault(t["module"], {}).setdefault(t["device"], []).append(t["name"])
    # plain tensor attributes that .to() / .to_empty() left behind (the tree lists only those off their
    # module's device, with the line that assigns them)
    attributes: dict[str, list[dict]] = {}
    for a in tree.get("stray_tensors", []):
        attributes.setdefault(a["module"], []).append(a)
    found = []
    order = module_order(tree)
    for module in sorted(set(by_module) | set(attributes), key=lambda m: order.get(m, len(order))):
        devices = {d: list(names) for d, names in by_module.get(module, {}).items()}
        attrs = attributes.get(module, [])
        if len(devices) < 2 and not attrs:
            continue
        # the device most of the module lives on is "home" (the model's, for a module that holds only
        # attributes); name what is elsewhere
        home = max(devices, key=lambda d: (len(devices[d]), d)) if devices else attrs[0]["home"]
        for a in attrs:
            devices.setdefault(a["device"], []).append(a["name"])
        away = {d: names for d, names in sorted(devices.items()) if d != home}
        stray = [n for names in away.values() for n in names]
        owner = module or "the model"
        detail = (f"{_names(stray)} {'is' if len(stray) == 1 else 'are'} on {', '.join(away)} while the rest "
                  f"of {owner} is on {home}: forward fails with a device mismatch, or silently copies every "
                  f"step.")
        fix = ("Move the whole model once with model.to(device) after it is built (and after loading weights); "
               "create tensors in forward with device=x.device.")
        evidence = {"devices": {d: names[:20] for d, names in sorted(devices.items())}, "home": home}
        location = module_location(tree, module)
        if attrs:
            names = [a["attribute"] for a in attrs]
            one = len(attrs) == 1
            detail += (f" {_names(names)} {'is a plain tensor attribute' if one else 'are plain tensor attributes'}"
                       f" of {owner}, not {'a registered buffer' if one else 'registered buffers'}: model.to(), "
                       f".to_empty() and state_dict() do not see {'it' if one else 'them'}.")
            fix = (f"Register {'it' if one else 'each'} as a buffer: self.register_buffer('{names[0]}', tensor, "
                   f"persistent=False) instead of self.{names[0]} = tensor, so that .to() and .to_empty() move "
                   f"{'it' if one else 'them'} with the model (.to_empty() leaves a buffer's memory "
                   f"uninitialised: fill it again after).")
            evidence["attributes"] = [{k: a.get(k) for k in ("name", "device", "shape", "dtype", "location")}
                                      for a in attrs[:20]]
            location = next((a["location"] for a in attrs if a.get("location")), location)
        found.append(Finding(
            code=CODE, severity="error",
            title=f"{module or 'The model'} has tensors on {', '.join(sorted({*devices, home}))}",
            detail=detail, module=module, location=location, evidence=evidence, fix=fix))
    return found


def called_across_devices(module: str | None, cls: str, own: str, inputs: list[dict],
                          location: str | None) -> Finding:
    """Module `module` (class `cls`, weights on `own`) was called with these inputs ({"shape", "device"}) on
    other devices; `location`: the line that called it."""
    where = module or "the model"
    devices = sorted({i["device"] for i in inputs})
    given = ", ".join(f"{tuple(i['shape'])} on {i['device']}" for i in inputs[:3])
    return Finding(
        code=CODE, severity="error",
        title=f"{where} is on {own} but was called with {'an input' if len(inputs) == 1 else 'inputs'} on "
              f"{', '.join(devices)}",
        detail=(f"{cls} {where} holds its weights on {own}, and its input "
                f"({given}) is on another device: "
                f"the call fails with a device mismatch, or copies every step. Usually the module was "
                f"built or replaced after model.to(device), or the batch was not moved."),
        module=module, location=location,
        evidence={"module_device": own, "input_devices": devices, "inputs": inputs[:5]},
        fix=("Call model.to(device) after the model is complete (after replacing any layer), and move each "
             "batch with x.to(device) before the forward."))
