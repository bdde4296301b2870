"""Patches for how a model registers its parts: containers that PyTorch cannot see (unregistered-module,
unregistered-parameter), a layer built in forward() (layer-created-in-forward), and super().__init__()
not first (missing-super-init)."""
from __future__ import annotations

import re

import libcst as cst

from ._cst import (BUILTINS, LOOPS, Edits, Source, call_name, dotted, expr_stmt_call, is_method_call, require,
                   statement)

# what each registering container supports beyond iteration, len() and indexing: a file that calls anything
# else on the attribute would break
_SUPPORTED = {
    "ModuleList": {"append", "extend", "insert", "pop", "index", "parameters", "named_parameters", "modules",
                   "children", "named_children", "named_modules", "to", "train", "eval", "apply", "cuda", "cpu",
                   "requires_grad_", "zero_grad", "state_dict", "half", "float", "double"},
    "ModuleDict": {"keys", "values", "items", "update", "pop", "clear", "parameters", "named_parameters",
                   "modules", "children", "named_children", "to", "train", "eval", "apply", "cuda", "cpu",
                   "requires_grad_", "state_dict"},
    "ParameterList": {"append", "extend", "parameters", "named_parameters", "to", "cuda", "cpu",
                      "requires_grad_", "state_dict"},
    "ParameterDict": {"keys", "values", "items", "update", "pop", "clear", "get", "parameters",
                      "named_parameters", "to", "cuda", "cpu", "requires_grad_", "state_dict"},
}
_WRAPPERS = {("module", "list"): "ModuleList", ("module", "tuple"): "ModuleList", ("module", "dict"): "ModuleDict",
             ("parameter", "list"): "ParameterList", ("parameter", "tuple"): "ParameterList",
             ("parameter", "dict"): "ParameterDict"}


def _assignment_at(source: Source, line: int, attribute: str) -> tuple[cst.SimpleStatementLine, cst.CSTNode,
                                                                        cst.FunctionDef, str]:
    """The statement `self.<attribute> = value` at `line`, its Assign/AnnAssign, its method and self's name."""
    stmt = source.statement_at(line)
    require(isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1, "not one simple statement")
    assign = stmt.body[0]
    fn = source.function_of(stmt)
    me = source.self_name(fn)
    require(me is not None, "not in a method")
    if isinstance(assign, cst.Assign):
        require(len(assign.targets) == 1, "several targets")
        target = assign.targets[0].target
    else:
        require(isinstance(assign, cst.AnnAssign) and assign.value is not None, "not an assignment")
        target = assign.target
    require(dotted(target) == f"{me}.{attribute}", "another attribute")
    return stmt, assign, fn, me


def _uses_fit(source: Source, cls: cst.ClassDef, me: str, attribute: str, wrapper: str) -> bool:
    """Every method the class calls on self.<attribute> is one the registering container has."""
    for node in source.nodes(cst.Attribute, within=cls):
        if dotted(node.value) == f"{me}.{attribute}" and node.attr.value not in _SUPPORTED[wrapper]:
            return False
    return True


def _wrap(source: Source, value: cst.BaseExpression, wrapper: str) -> cst.Call:
    ref = source.reference(f"torch.nn.{wrapper}")
    require(ref is not None, "the file does not import torch.nn")
    if isinstance(value, cst.Tuple) and not value.lpar:
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func=cst.parse_expression(ref), args=[cst.Arg(value)])


_LITERALS = (cst.List, cst.ListComp, cst.Tuple, cst.GeneratorExp, cst.Dict, cst.DictComp)


def _literal_value(source: Source, value: cst.BaseExpression, fn: cst.FunctionDef, me: str, attribute: str
                   ) -> cst.BaseExpression:
    """The container literal self.<attribute> is given: `value` itself, `[]` for `list()` and `{}` for
    `dict()`; when the located assignment is `self.x = None`, the one literal assigned to it elsewhere in
    the class (`self.x = []` under an `if`, then appended to)."""
    if isinstance(value, cst.Call) and not value.args and call_name(value) in ("list", "dict") \
            and call_name(value) not in source.module_names():
        return value
    if isinstance(value, cst.Name) and value.value == "None":
        cls = source.class_of(fn)
        others = [a.value for a in source.nodes(cst.Assign, within=cls) if len(a.targets) == 1
                  and dotted(a.targets[0].target) == f"{me}.{attribute}" and a.value is not value]
        literals = [v for v in others if isinstance(v, _LITERALS)]
        require(len(literals) == 1 and len(others) == 1, "not one literal container")
        return literals[0]
    return value


def _container(source: Source, finding: dict, line: int, what: str) -> Edits:
    """self.x = [a, b] / [f(i) for i ...] / (a, b) / {"k": a} -> the registering container around it."""
    ev = finding.get("evidence") or {}
    attribute = str(ev.get("attribute", "")).rsplit(".", 1)[-1]
    wrapper = _WRAPPERS.get((what, ev.get("container")))
    require(wrapper and attribute.isidentifier(), "no container to wrap")
    stmt, assign, fn, me = _assignment_at(source, line, attribute)
    value = _literal_value(source, assign.value, fn, me, attribute)
    # what the run saw in it: each item directly in the container (a list of lists cannot be wrapped), and
    # for a dict, string keys without dots (what ModuleDict/ParameterDict take)
    path = str(ev.get("attribute"))
    items = ev.get("items") or []
    require(items and len(items) == min(ev.get("count") or 0, 20), "not every item named")
    key = re.compile(re.escape(path) + (r"\['[^'.\\]+'\]" if wrapper.endswith("Dict") else r"\[\d+\]"))
    require(all(key.fullmatch(str(i)) for i in items), "nested, or keys that are not strings")
    empty = isinstance(value, cst.Call)         # list() / dict()
    if wrapper.endswith("Dict"):
        require(isinstance(value, (cst.Dict, cst.DictComp)) or empty and call_name(value) == "dict",
                "not a literal dict")
    else:
        require(isinstance(value, (cst.List, cst.ListComp, cst.Tuple, cst.GeneratorExp))
                or empty and call_name(value) == "list", "not a literal list")
        # everything in it must be what the run saw: modules (a function such as F.relu in the list would make
        # the registering container raise)
        if isinstance(value, (cst.List, cst.Tuple)) and value.elements:       # (an empty one is appended to)
            require(len(value.elements) == ev.get("count") and all(isinstance(e, cst.Element) for e in value.elements),
                    "holds something that is not a module")
        elif isinstance(value, (cst.ListComp, cst.GeneratorExp)):
            require(isinstance(value.elt, cst.Call), "builds something that may not be a module")
        cls = source.class_of(fn)
        for node in source.nodes(cst.Call, within=cls) if cls is not None else ():
            if is_method_call(node, "append", f"{me}.{attribute}") or is_method_call(node, "insert", f"{me}.{attribute}"):
                added = node.args[-1].value if node.args else None
                require(isinstance(added, (cst.Call, cst.Name)), "appends something that may not be a module")
    cls = source.class_of(fn)
    require(cls is not None and _uses_fit(source, cls, me, attribute, wrapper), "used as a plain container")
    edits = Edits()
    edits.replace(value, lambda updated: _wrap(source, updated, wrapper))
    return edits


def unregistered_module(source: Source, finding: dict, line: int) -> Edits:
    return _container(source, finding, line, "module")


def _strip_requires_grad(call: cst.Call) -> cst.BaseExpression:
    """`torch.ones(3, requires_grad=True)` -> `torch.ones(3)`; `t.requires_grad_()` -> `t`."""
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == "requires_grad_" and not call.args:
        return call.func.value
    for i, arg in enumerate(call.args):
        if arg.keyword is not None and arg.keyword.value == "requires_grad":
            require(isinstance(arg.value, cst.Name) and arg.value.value == "True", "requires_grad is not True")
            out = list(call.args)
            out.pop(i)
            if out and i == len(out):
                out[-1] = out[-1].with_changes(comma=arg.comma)
            return call.with_changes(args=out)
    return call


def unregistered_parameter(source: Source, finding: dict, line: int) -> Edits:
    ev = finding.get("evidence") or {}
    if ev.get("container") != "tensor":
        return _container(source, finding, line, "parameter")
    # self.w = torch.ones(3, requires_grad=True) -> self.w = nn.Parameter(torch.ones(3))
    attribute = str(ev.get("attribute", "")).rsplit(".", 1)[-1]
    stmt, assign, fn, me = _assignment_at(source, line, attribute)
    value = assign.value
    require(isinstance(value, cst.Call), "not a fresh tensor")     # a name may be shared with other code
    ref = source.reference("torch.nn.Parameter")
    require(ref is not None, "the file does not import torch.nn")
    edits = Edits()
    edits.replace(value, lambda updated: cst.Call(func=cst.parse_expression(ref),
                                                  args=[cst.Arg(_strip_requires_grad(updated))]))
    return edits


# -- layer-created-in-forward -------------------------------------------------------------------------
def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _free_names(source: Source, expr: cst.CSTNode, me: str) -> tuple[set[str], set[str]]:
    """The plain names `expr` reads, and the attributes of `me` it reads."""
    names, attributes = set(), set()
    for node in source.nodes(cst.Name, within=expr):
        parent = source.parent(node)
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            continue
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            continue
        if node.value == me:
            require(isinstance(parent, cst.Attribute) and parent.value is node, "self itself is passed")
            attributes.add(parent.attr.value)
        else:
            names.add(node.value)
    return names, attributes


def layer_created_in_forward(source: Source, finding: dict, line: int) -> Edits:
    """`nn.Linear(64, self.classes)(h)` in forward -> `self.linear = nn.Linear(64, self.classes)` at the end
    of __init__ and `self.linear(h)`; the same for `self.fc = nn.Linear(...)` or `fc = nn.Linear(...)` in
    forward. Only when the layer's arguments are constants, module-level names, or attributes __init__ sets."""
    ev = finding.get("evidence") or {}
    cls_name = ev.get("class")
    require(isinstance(cls_name, str) and cls_name.isidentifier(), "no class")
    calls = [c for c in source.on_line(line, cst.Call)
             if (call_name(c) or "").rsplit(".", 1)[-1] == cls_name]
    require(len(calls) == 1, "not one constructor on the line")
    ctor = calls[0]
    fn = source.function_of(ctor)
    me = source.self_name(fn)
    require(me is not None and fn.name.value != "__init__", "not in a method")
    cls = source.class_of(fn)
    init = source.method(cls, "__init__")
    require(init is not None and source.self_name(init) == me, "no __init__ to build it in")
    require(isinstance(init.body, cst.IndentedBlock), "a one-line __init__")
    last = init.body.body[-1]
    require(not (isinstance(last, cst.SimpleStatementLine) and any(isinstance(s, cst.Return) for s in last.body)),
            "__init__ ends in return")
    for a in source.ancestors(ctor):          # built once per call, not once per iteration
        if a is fn:
            break
        require(not isinstance(a, LOOPS + (cst.Lambda, cst.FunctionDef)), "built in a loop")
    # what the arguments read must mean the same in __init__
    names, attributes = set(), set()
    for arg in ctor.args:
        read, attrs = _free_names(source, arg, me)
        names, attributes = names | read, attributes | attrs
    require(not names & (source.assigned_names(fn) | set(source.params(fn))), "reads forward's locals")
    require(names <= source.module_names() | BUILTINS, "reads a name defined elsewhere")
    set_in_init = {dotted(a)[len(me) + 1:] for t in source.nodes((cst.AssignTarget, cst.AnnAssign), within=init)
                   for a in source.nodes(cst.Attribute, within=t.target)
                   if isinstance(a.value, cst.Name) and a.value.value == me}
    require(attributes <= set_in_init, "reads attributes __init__ does not set")
    taken = source.self_attributes(cls, me)
    # a new attribute must not take a base class's name: its bases are nn.Module or classes of this file
    for base in cls.bases:
        name = dotted(base.value)
        local = [c for c in source.nodes(cst.ClassDef) if c.name.value == name and c is not cls]
        require(source.resolve(name) == "torch.nn.Module" or len(local) == 1, "a base class defined elsewhere")
        if local:
            taken |= source.self_attributes(local[0], me)
    edits = Edits()
    parent = source.parent(ctor)
    stmt = source.statement_at(line)
    target = None
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Assign) \
            and stmt.body[0].value is ctor and len(stmt.body[0].targets) == 1:
        target = stmt.body[0].targets[0].target
    if isinstance(parent, cst.Call) and parent.func is ctor:        # built and called at once
        name = _snake(cls_name)
        n = 2
        while name in taken:
            name, n = f"{_snake(cls_name)}_{n}", n + 1
        edits.replace(ctor, cst.parse_expression(f"{me}.{name}"))
    elif target is not None and dotted(target) == f"{me}.{dotted(target).split('.')[-1]}" \
            and dotted(target).count(".") == 1:                     # self.fc = nn.Linear(...) in forward
        name = dotted(target).split(".")[1]
        require(sum(dotted(t.target) == dotted(target) for t in source.nodes(cst.AssignTarget, within=cls)) == 1,
                "assigned elsewhere too")
        require(source.parent(stmt) is fn.body, "not at the top of forward")
        edits.remove(stmt)
    elif isinstance(target, cst.Name):                              # fc = nn.Linear(...); fc(x)
        name = target.value
        require(name not in taken, f"{me}.{name} is taken")
        require(source.parent(stmt) is fn.body, "not at the top of forward")
        binds = [n for n in source.nodes(cst.Name, within=fn) if n.value == name]
        require(sum(1 for t in source.nodes(cst.AssignTarget, within=fn) if dotted(t.target) == name) == 1
                and name not in source.params(fn), "rebound")
        for node in binds:
            up = source.parent(node)
            if up is target or (isinstance(up, cst.Attribute) and up.attr is node) or \
                    (isinstance(up, cst.Arg) and up.keyword is node):
                continue
            require(source.function_of(node) is fn, "used in a nested function")
            edits.replace(node, cst.parse_expression(f"{me}.{name}"))
        edits.remove(stmt)
    else:
        require(False, "not a form we rewrite")
    built = cst.SimpleStatementLine(body=[cst.Assign(targets=[cst.AssignTarget(cst.parse_expression(f"{me}.{name}"))],
                                                     value=ctor)])
    edits.insert_after(init.body.body[-1], built)
    return edits


# -- missing-super-init -------------------------------------------------------------------------------
def _is_init_call(source: Source, stmt: cst.CSTNode, cls: cst.ClassDef) -> bool:
    call = expr_stmt_call(stmt)
    if call is None or not isinstance(call.func, cst.Attribute) or call.func.attr.value != "__init__":
        return False
    receiver = call.func.value
    if isinstance(receiver, cst.Call) and call_name(receiver) == "super":
        return True
    bases = {dotted(b.value) for b in cls.bases}
    return dotted(receiver) in bases or source.resolve(dotted(receiver)) == "torch.nn.Module"


def missing_super_init(source: Source, finding: dict, line: int) -> Edits:
    """super().__init__() moved to be the first statement of __init__ (after its docstring), or added there
    when the class derives from nn.Module alone and never calls it."""
    ev = finding.get("evidence") or {}
    classes = [c for c in source.nodes(cst.ClassDef) if c.name.value == ev.get("class")]
    require(len(classes) == 1, "not one such class")
    cls = classes[0]
    init = source.method(cls, "__init__")
    require(init is not None and isinstance(init.body, cst.IndentedBlock), "no __init__")
    body = list(init.body.body)
    first = 1 if body and isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1 and \
        isinstance(body[0].body[0], cst.Expr) and isinstance(body[0].body[0].value,
                                                             (cst.SimpleString, cst.ConcatenatedString)) else 0
    require(first < len(body), "an empty __init__")
    calls = [i for i, s in enumerate(body) if _is_init_call(source, s, cls)]
    anywhere = [n for n in source.nodes(cst.Attribute, within=init) if n.attr.value == "__init__"]
    edits = Edits()
    if not calls:
        # only certain when nn.Module is the one base: its __init__ takes nothing
        require(not anywhere, "__init__ is called somewhere else in it")
        require(len(cls.bases) == 1 and source.resolve(dotted(cls.bases[0].value)) == "torch.nn.Module",
                "other bases")
        edits.insert_before(body[first], statement("super().__init__()\n", source))
        return edits
    require(len(calls) == 1 and len(anywhere) == 1, "called twice")
    moved = body[calls[0]]
    receiver = expr_stmt_call(moved).func.value
    unbound = isinstance(receiver, cst.Call) and call_name(receiver) == "super" and len(receiver.args) == 1 \
        and dotted(receiver.args[0].value) == cls.name.value and source.function_of(moved) is init
    if unbound:             # super(Cls).__init__(): an unbound super, nn.Module.__init__ never runs
        edits.replace(receiver, lambda updated: updated.with_changes(args=()))
        if calls[0] == first:
            return edits
    require(calls[0] > first, "already first")
    # what the call passes must not come from the statements it moves in front of
    names = {n.value for n in source.nodes(cst.Name, within=expr_stmt_call(moved))}
    before = set()
    for s in body[first:calls[0]]:
        before |= source.assigned_names(s)
    require(not names & before, "its arguments are computed before it")
    edits.remove(moved)
    kept = [ln for ln in moved.leading_lines if ln.comment is not None]
    edits.insert_before(body[first], moved.with_changes(leading_lines=kept))
    return edits


PATCHERS = {
    "unregistered-module": unregistered_module,
    "unregistered-parameter": unregistered_parameter,
    "layer-created-in-forward": layer_created_in_forward,
    "missing-super-init": missing_super_init,
}
