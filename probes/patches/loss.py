"""Patches for the loss: a softmax (or sigmoid) before a loss that applies its own (loss-input-mismatch)."""
from __future__ import annotations

import libcst as cst

from ._cst import Edits, Source, call_name, dotted, drop_arg, require

_FUNCTIONS = {"softmax": {"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"},
              "sigmoid": {"torch.sigmoid", "torch.nn.functional.sigmoid", "torch.special.expit"}}
_MODULES = {"softmax": "torch.nn.Softmax", "sigmoid": "torch.nn.Sigmoid"}
_LOG = {"softmax": "log_softmax", "Softmax": "LogSoftmax"}
_LOSSES = {"cross_entropy", "binary_cross_entropy_with_logits"}


def _activation_input(source: Source, expr: cst.CSTNode, kind: str, me: str | None) -> cst.BaseExpression | None:
    """What `expr` applies the activation to, when it is `F.softmax(x, ...)`, `torch.softmax(x, ...)` or
    the tensor method `x.softmax(...)` (sigmoid alike); `self.softmax(x)` (`me` is self) calls a submodule
    or a method, never the tensor method."""
    if not isinstance(expr, cst.Call):
        return None
    name = source.resolve(call_name(expr))
    if name in _FUNCTIONS[kind]:
        first = expr.args[0] if expr.args else None
        return first.value if first is not None and first.keyword is None and not first.star else None
    if isinstance(expr.func, cst.Attribute) and expr.func.attr.value == kind and not (name or "").startswith("torch.") \
            and (me is None or dotted(expr.func.value) != me):
        return expr.func.value
    return None


def _to_log(call: cst.Call) -> cst.Call:
    """softmax -> log_softmax, in whichever form: F.softmax(x, 1), x.softmax(1), nn.Softmax(dim=1)."""
    func = call.func
    name = func.attr if isinstance(func, cst.Attribute) else func
    require(isinstance(name, cst.Name) and name.value in _LOG, "not a softmax")
    new = name.with_changes(value=_LOG[name.value])
    return call.with_changes(func=func.with_changes(attr=new) if isinstance(func, cst.Attribute) else new)


def _module_of(source: Source, cls: cst.ClassDef, attribute: str) -> cst.Call | None:
    """What __init__ assigns to self.<attribute>, when that is a call (a module built there)."""
    init = source.method(cls, "__init__")
    me = source.self_name(init) if init is not None else None
    if me is None:
        return None
    found = [a.value for a in source.nodes(cst.Assign, within=init) if len(a.targets) == 1
             and dotted(a.targets[0].target) == f"{me}.{attribute}"]
    return found[0] if len(found) == 1 and isinstance(found[0], cst.Call) else None


def _reads_probabilities(source: Source) -> bool:
    """A comparison with a number strictly between 0 and 1 (`prob > 0.5`), or a rounding, anywhere; random
    draws compared with one (`torch.rand(n) < 0.6`, making data) are no reading of the model."""
    for node in source.nodes((cst.Comparison, cst.Call)):
        if isinstance(node, cst.Call):
            if (call_name(node) or "").rsplit(".", 1)[-1] == "round" or \
                    isinstance(node.func, cst.Attribute) and node.func.attr.value == "round":
                return True
            continue
        sides = [node.left, *(c.comparator for c in node.comparisons)]
        if any(_random(source, side) for side in sides):
            continue
        if any(isinstance(side, cst.Float) and 0 < float(side.value) < 1 for side in sides):
            return True
    return False


def _random(source: Source, expr: cst.CSTNode) -> bool:
    return any((source.resolve(call_name(c)) or "").startswith(("torch.rand", "random.", "numpy.random."))
               for c in source.nodes(cst.Call, within=expr))


def _outputs(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    """What a forward returns: the value, or each element of a tuple, list or dict it builds."""
    if isinstance(value, (cst.Tuple, cst.List)):
        return [e.value for e in value.elements if isinstance(e, cst.Element)]
    if isinstance(value, cst.Dict):
        return [e.value for e in value.elements if isinstance(e, cst.DictElement)]
    return [value]


def _in_forward(source: Source, kind: str, to_log: bool) -> list[Edits]:
    """Each output of a model in the file whose forward ends in the activation: one way to take it out
    (or, `to_log`, to make it its log form), per output."""
    found = []
    for cls in source.nodes(cst.ClassDef):
        forward = source.method(cls, "forward")
        if forward is None:
            continue
        me = source.self_name(forward)
        returns = [r for r in source.nodes(cst.Return, within=forward) if source.function_of(r) is forward]
        if len(returns) != 1 or returns[0].value is None:
            continue
        for value in _outputs(returns[0].value):
            edits = Edits()
            if _activation_input(source, value, kind, me) is not None:  # return F.softmax(self.fc(x), dim=1)
                edits.replace(value, _to_log if to_log else
                              (lambda updated, me=me: _activation_input(source, updated, kind, me)))
                found.append(edits)
                continue
            called = dotted(value.func) if isinstance(value, cst.Call) else None
            if me is None or not called or not called.startswith(me + ".") or called.count(".") != 1:
                continue
            built = _module_of(source, cls, called.split(".")[1])
            if built is None:
                continue
            if source.resolve(call_name(built)) == _MODULES[kind] and len(value.args) == 1:   # self.softmax(h)
                if to_log:
                    edits.replace(built, _to_log)
                else:
                    edits.replace(value, lambda updated: updated.args[0].value)
                found.append(edits)
            elif source.resolve(call_name(built)) == "torch.nn.Sequential" and built.args \
                    and isinstance(built.args[-1].value, cst.Call) \
                    and source.resolve(call_name(built.args[-1].value)) == _MODULES[kind] and len(built.args) > 1 \
                    and not any(a.star or a.keyword for a in built.args):   # nn.Sequential(..., nn.Softmax(dim=1))
                if to_log:
                    edits.replace(built.args[-1].value, _to_log)
                else:
                    edits.replace(built, lambda updated: drop_arg(updated, len(updated.args) - 1))
                found.append(edits)
    return found


def loss_input_mismatch(source: Source, finding: dict, line: int) -> Edits:
    """Cross-entropy (or BCEWithLogits) given a softmax's (sigmoid's) output: the activation taken out where
    the loss's input is made: in the loss call itself, or the one model in the file whose forward ends in
    it (nn.Sequential(..., nn.Softmax(dim=1)), return F.softmax(x, 1), return self.softmax(x))."""
    ev = finding.get("evidence") or {}
    to_log = ev.get("loss") == "nll_loss" and ev.get("input_kind") == "probabilities"
    kind = "softmax" if to_log else ev.get("input_came_from")
    require(to_log or ev.get("loss") in _LOSSES and kind in _FUNCTIONS and ev.get("expected") == "logits",
            "another mismatch")
    # the loss's input made on the loss's own line: cross_entropy(F.softmax(out, 1), y) -> (out, y)
    for call in source.on_line(line, cst.Call):
        if call.args and call.args[0].keyword is None:
            me = source.self_name(source.function_of(call))
            inner = _activation_input(source, call.args[0].value, kind, me)
            if inner is not None:
                edits = Edits()
                edits.replace(call.args[0].value, _to_log if to_log else
                              (lambda updated: _activation_input(source, updated, kind, me)))
                return edits
    candidates = _in_forward(source, kind, to_log)
    require(len(candidates) == 1, "not one model ending in the activation")
    # the model's outputs change: where the file reads them as probabilities (a threshold, a rounding)
    # taking the activation out would change its meaning there
    require(to_log or not _reads_probabilities(source), "its outputs are read as probabilities")
    return candidates[0]


PATCHERS = {"loss-input-mismatch": loss_input_mismatch}
