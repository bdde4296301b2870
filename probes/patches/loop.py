"""Patches for the training and validation loop: model.forward(x) called directly, a graph kept every step,
validation without model.eval() or without model.train() after it. (The optimizer's calls: optimizer.py.)"""
from __future__ import annotations

import libcst as cst

from ._cst import (Edits, NotCertain, Source, call_name, dotted, expr_stmt_call, is_method_call, method_call,
                   require, statement)

_FUNCTIONAL_DROPOUT = {f"torch.nn.functional.{n}" for n in
                       ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout")}
_NO_GRAD = {"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad"}
# methods only a module (or a model wrapper) has: how a loop variable shows it holds the model
_MODULE_METHODS = {"eval", "train", "parameters", "named_parameters", "state_dict", "load_state_dict", "modules",
                   "zero_grad", "to", "cuda", "cpu", "children", "named_modules", "requires_grad_"}


def forward_called_directly(source: Source, finding: dict, line: int) -> Edits:
    """`model.forward(x)` -> `model(x)` on the finding's line."""
    called = (finding.get("evidence") or {}).get("called", "")
    require(isinstance(called, str) and called.endswith(".forward"), "no call named")
    target = called[:-len(".forward")]
    calls = [c for c in source.on_line(line, cst.Call) if is_method_call(c, "forward", target)]
    if not calls:           # the evidence names the model as the loop knew it: any x.forward(...) on the line
        calls = [c for c in source.on_line(line, cst.Call) if is_method_call(c, "forward")
                 and not isinstance(c.func.value, cst.Call)]        # never super().forward()
        require(len({dotted(c.func.value) for c in calls}) == 1, "not one receiver")
    require(calls, "no .forward( call on the line")
    edits = Edits()
    for call in calls:
        edits.replace(call, lambda updated: updated.with_changes(func=updated.func.value))
    return edits


# -- memory-growth ------------------------------------------------------------------------------------
def _reads_attributes(source: Source, name: str, fn: cst.CSTNode) -> bool:
    return any(dotted(n.value) == name for n in source.nodes(cst.Attribute, within=fn))


_DETACHED = ("detach", "item", "tolist", "cpu", "numpy")


def _kept_value(stmt: cst.CSTNode) -> cst.BaseExpression | None:
    """What a statement keeps: `x` of `history.append(x)` or of `total += x`, else None."""
    call = expr_stmt_call(stmt)
    if call is not None:
        if is_method_call(call, "append") and len(call.args) == 1 and call.args[0].keyword is None \
                and not call.args[0].star:
            return call.args[0].value
        return None
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.AugAssign) \
            and isinstance(stmt.body[0].operator, cst.AddAssign) and dotted(stmt.body[0].target):
        return stmt.body[0].value
    return None


def _reads(source: Source, expr: cst.CSTNode, names: set[str]) -> bool:
    return any(n.value in names for n in source.nodes(cst.Name, within=expr)
               if not (isinstance(source.parent(n), cst.Attribute) and source.parent(n).attr is n))


def _keepers_of(source: Source, stmt: cst.SimpleStatementLine) -> list[cst.SimpleStatementLine]:
    """The statements after `stmt` in its block that keep what it made (`out = model(x)`, `loss = f(out)`,
    then `total += loss`, `history.append(out)`)."""
    made = stmt.body[0]
    require(isinstance(made, cst.Assign), "neither keeps nor makes a tensor")
    derived = {n.value for t in made.targets for n in source.nodes(cst.Name, within=t.target)}
    block, at = source.block_of(stmt)
    keepers = []
    for later in block.body[at + 1:]:
        small = later.body[0] if isinstance(later, cst.SimpleStatementLine) and len(later.body) == 1 else None
        if isinstance(small, cst.Assign) and _reads(source, small.value, derived):
            derived |= {n.value for t in small.targets for n in source.nodes(cst.Name, within=t.target)}
        kept = _kept_value(later)
        if kept is not None and _reads(source, kept, derived):
            keepers.append(later)
        elif not isinstance(later, cst.SimpleStatementLine) and _reads(source, later, derived):
            require(False, "used in a nested block")
    return keepers


def memory_growth(source: Source, finding: dict, line: int) -> Edits:
    """Graphs kept alive step after step: `history.append(out)` -> `history.append(out.detach())`, and
    `total += loss` -> `total += loss.item()` (or `.detach()` where the total is used as a tensor). The line
    the finding names keeps the tensor itself, or makes it: then each statement after it in the same block
    that keeps what was made from it (`out = model(x)`, `loss = out.loss`, ..., `total += loss`)."""
    ev = finding.get("evidence") or {}
    require(ev.get("kept_steps"), "not the graphs of earlier steps")
    stmt = source.statement_at(line)
    require(isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1, "not one simple statement")
    if _kept_value(stmt) is not None:
        keepers = [stmt]
    else:
        keepers = _keepers_of(source, stmt)
        require(keepers, "no statement that keeps it")
        # the same model's outputs kept at its other forwards in the function (a validation loop's running
        # total, say): one finding names the first; the patch takes them all, or the finding would stay
        fn = source.function_of(stmt)
        try:
            model = _model_in(source, stmt, fn or source.module)
        except NotCertain:
            model = None
        for other in source.nodes(cst.SimpleStatementLine, within=fn) if fn is not None and model else ():
            if other is stmt or _no_grad_with(source, other) is not None or not isinstance(other.body[0], cst.Assign) \
                    or not any(dotted(c.func) == model for c in source.nodes(cst.Call, within=other)):
                continue
            keepers += [k for k in _keepers_of(source, other) if k not in keepers]
    edits = Edits()
    for keeper in keepers:              # each running total or list of what the line made: all detached
        _detach_kept(source, keeper, ev, edits)
    return edits


def _detach_kept(source: Source, keeper: cst.SimpleStatementLine, ev: dict, edits: Edits) -> None:
    value = _kept_value(keeper)
    require(not isinstance(value, (cst.Tuple, cst.List, cst.Dict, cst.Set)), "several tensors")
    # kept on purpose when it is backpropagated later (a loss summed over steps, then .backward())
    call = expr_stmt_call(keeper)
    store = dotted(call.func.value) if call is not None else dotted(keeper.body[0].target)
    require(store is not None and not any(
        (is_method_call(n, "backward") and _reads(source, n.func.value, {store.split(".")[0]}))
        or (source.resolve(call_name(n)) or "").startswith(("torch.autograd.backward", "torch.autograd.grad"))
        for n in source.nodes(cst.Call)), "backpropagated later")
    require(not any(is_method_call(value, m) for m in _DETACHED) and call_name(value) not in ("float", "int"),
            "already a number")
    if call is not None:
        edits.replace(value, lambda updated: method_call(updated, "detach"))
        return
    fn = source.function_of(keeper) or source.module
    scalar = ev.get("kinds") == ["loss"] and not _reads_attributes(source, store, fn)
    edits.replace(value, lambda updated: method_call(updated, "item" if scalar else "detach"))


# -- eval-mode-missing, train-mode-off ----------------------------------------------------------------
def _model_in(source: Source, stmt: cst.CSTNode, fn: cst.CSTNode) -> str:
    """The one thing called on `line` that holds the model: a variable (a parameter or local of the function,
    or a module-level assignment) or `self.x`, never a function or class of the file, an import or a builtin;
    when several, the one the file calls module methods on (model.eval(), .parameters(), ...)."""
    variables = {n for a in source.nodes(cst.Assign) if source.function_of(a) is None
                 and source.enclosing(a, cst.ClassDef) is None
                 for t in a.targets if isinstance(t.target, cst.Name) for n in [t.target.value]}
    if isinstance(fn, cst.FunctionDef):
        variables |= set(source.params(fn)) | source.assigned_names(fn)
    me = source.self_name(fn) if isinstance(fn, cst.FunctionDef) else None
    candidates: list[str] = []
    for call in source.nodes(cst.Call, within=stmt):
        name = dotted(call.func)
        if name is None or name in candidates:
            continue
        if isinstance(call.func, cst.Name) and name in variables or \
                me and name.count(".") == 1 and name.startswith(me + "."):
            candidates.append(name)
    if len(candidates) > 1:
        candidates = [c for c in candidates if any(is_method_call(n, m, c) for n in source.nodes(cst.Call)
                                                    for m in _MODULE_METHODS)]
    require(len(candidates) == 1, "not one model in the statement")
    return candidates[0]


def _no_grad_with(source: Source, node: cst.CSTNode) -> cst.With | None:
    for a in source.ancestors(node):
        if isinstance(a, cst.With) and any(source.resolve(call_name(item.item)) in _NO_GRAD for item in a.items):
            return a
        if isinstance(a, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return None
    return None


def _with_training(me: str):
    """`F.dropout(x, p)` -> `F.dropout(x, p, training=self.training)`."""
    arg = cst.Arg(keyword=cst.Name("training"), value=cst.parse_expression(f"{me}.training"),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))

    def add(updated: cst.Call) -> cst.Call:
        args = list(updated.args)
        last = args[-1]
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return updated.with_changes(args=[*args, arg.with_changes(comma=last.comma)])
    return add


def eval_mode_missing(source: Source, finding: dict, line: int) -> Edits:
    """F.dropout(x, p) in a module -> F.dropout(x, p, training=self.training); a validation pass under
    torch.no_grad() -> model.eval() before it and model.train() after it."""
    ev = finding.get("evidence") or {}
    edits = Edits()
    if ev.get("functional"):
        # every functional dropout of that module's class that does not pass its mode
        calls = [c for c in source.on_line(line, cst.Call) if source.resolve(call_name(c)) in _FUNCTIONAL_DROPOUT]
        require(len(calls) == 1, "not one functional dropout")
        fn = source.function_of(calls[0])
        me = source.self_name(fn)
        require(me is not None, "not in a module's method")
        for call in source.nodes(cst.Call, within=source.class_of(fn)):
            if source.resolve(call_name(call)) not in _FUNCTIONAL_DROPOUT:
                continue
            given = [a for i, a in enumerate(call.args) if a.keyword is not None and a.keyword.value == "training"
                     or a.keyword is None and i == 2]
            if given and isinstance(given[0].value, cst.Name) and given[0].value.value == "True":
                # training=True written out: on in eval mode too
                edits.replace(given[0].value, cst.parse_expression(f"{me}.training"))
                continue
            if given or sum(a.keyword is None for a in call.args) > 2 or any(a.star for a in call.args):
                require(call is not calls[0], "training is passed already")
                continue
            require(source.self_name(source.function_of(call)) == me, "another self")
            edits.replace(call, _with_training(me))
        return edits
    stmt = source.statement_at(line)
    if ev.get("context") in ("torch.no_grad()", "torch.inference_mode()"):
        with_ = _no_grad_with(source, stmt)
        require(with_ is not None, "no `with torch.no_grad()` around the line")
        fn = source.function_of(with_) or source.module
        model = _model_in(source, stmt, fn)
    else:
        # forwards no backward used: the validation statement the line names (a loop over the batches)
        require(ev.get("context") == "gradients on", "another context")
        loops = [a for a in [stmt, *source.ancestors(stmt)] if isinstance(a, (cst.For, cst.While))
                 and source.function_of(a) is source.function_of(stmt)]
        require(loops, "not in a loop over batches")
        with_ = loops[0]
        require(not any(is_method_call(n, "backward") or is_method_call(n, "manual_backward")
                        for n in source.nodes(cst.Call, within=with_)), "the loop trains")
        fn = source.function_of(with_) or source.module
        model = _model_in(source, with_, fn)
    require(not source.exits(with_.body), "the block returns from inside")      # train() would never run
    require(not any(is_method_call(n, m, model) for n in source.nodes(cst.Call, within=fn) for m in ("eval", "train")),
            "it switches modes already")
    source.block_of(with_)
    edits.insert_before(with_, statement(f"{model}.eval()\n", source))
    edits.insert_after(with_, statement(f"{model}.train()\n", source))
    return edits


def train_mode_off(source: Source, finding: dict, line: int) -> Edits:
    """model.eval() for validation and never model.train() after it -> model.train() right after the
    validation pass (the statement of the block that holds the validation line, after the eval() call)."""
    ev = finding.get("evidence") or {}
    require(ev.get("validation_at") and str(ev["validation_at"]).endswith(f":{line}"), "no validation pass seen")
    stmt = source.statement_at(line)
    for block, holder in source.blocks_up(stmt):
        body = list(block.body)
        at = next(i for i, s in enumerate(body) if s is holder)
        models = {dotted(c.func.value) for s in body[:at] if (c := expr_stmt_call(s)) is not None
                  and is_method_call(c, "eval") and not c.args and dotted(c.func.value)}
        if not models:
            continue
        require(len(models) == 1, "several models switched to eval")
        model = models.pop()
        require(not any(is_method_call(n, "train", model) for s in body for n in source.nodes(cst.Call, within=s)),
                "train() is called in this block")
        require(not source.exits(holder) and not (isinstance(holder, cst.SimpleStatementLine)
                                                  and any(isinstance(b, cst.Return) for b in holder.body)),
                "the validation returns")
        edits = Edits()
        edits.insert_after(holder, statement(f"{model}.train()\n", source))
        return edits
    require(False, "no model.eval() before the validation")


PATCHERS = {
    "forward-called-directly": forward_called_directly,
    "memory-growth": memory_growth,
    "eval-mode-missing": eval_mode_missing,
    "train-mode-off": train_mode_off,
}
