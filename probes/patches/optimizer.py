"""Patches for the optimizer's calls in the loop: zero_grad() missing (gradients-accumulate), or between
backward() and step(), or scheduler.step() where optimizer.step() belongs (optimizer-not-stepping)."""
from __future__ import annotations

import libcst as cst

from ._cst import Edits, Source, call_name, dotted, expr_stmt_call, is_method_call, require, statement


def _backward_statement(source: Source, line: int) -> cst.SimpleStatementLine:
    stmt = source.statement_at(line)
    require(isinstance(stmt, cst.SimpleStatementLine) and _has_backward(source, stmt),     # or Lightning's
            "no backward() on the line")
    return stmt


def _has_backward(source: Source, node: cst.CSTNode) -> bool:
    return any(is_method_call(n, "backward") or is_method_call(n, "manual_backward")
               for n in source.nodes(cst.Call, within=node))


def _first_backward(source: Source, block: cst.CSTNode, at: int) -> cst.SimpleStatementLine:
    """The first backward() of the step that the backward at `block.body[at]` belongs to: going up the block
    from it to the step() before it (or the block's start). Several losses backpropagated into one step all
    count: zero_grad() goes before the first of them, never between them."""
    first = block.body[at]
    for earlier in reversed(block.body[:at]):
        if any(is_method_call(n, "step") for n in source.nodes(cst.Call, within=earlier)):
            break
        if _has_backward(source, earlier):
            require(isinstance(earlier, cst.SimpleStatementLine), "a backward() in a nested block")
            first = earlier
    return first


def _stepped_optimizer(call: cst.Call | None) -> str | None:
    """`opt.step()` -> 'opt'; `scaler.step(opt)` -> 'opt'."""
    if call is None or not is_method_call(call, "step"):
        return None
    if not call.args:
        return dotted(call.func.value)
    if len(call.args) == 1 and call.args[0].keyword is None:
        return dotted(call.args[0].value)
    return None


def _bound_to(source: Source, name: str) -> list[cst.CSTNode]:
    """What the file binds `name` to: the values of `name = ...` and of `with ... as name`."""
    out = []
    for node in source.nodes((cst.Assign, cst.WithItem)):
        if isinstance(node, cst.Assign):
            out += [node.value for t in node.targets if dotted(t.target) == name]
        elif node.asname is not None and dotted(node.asname.name) == name:
            out.append(node.item)
    return out


def _optimizer_like(source: Source, name: str, cls: str) -> bool:
    """Whether `name` can hold the optimizer the finding names (class `cls`): never bound in the file (a
    parameter), or bound to a call of a torch.optim class, of `cls`, or of something that builds one."""
    bound = _bound_to(source, name)
    if not bound:
        return True
    for value in bound:
        made = source.resolve(call_name(value)) or ""
        if not (made.startswith("torch.optim.") and ".lr_scheduler." not in made or made.rsplit(".", 1)[-1] == cls
                or "optim" in made.rsplit(".", 1)[-1].lower()):
            return False
    return True


def gradients_accumulate(source: Source, finding: dict, line: int) -> Edits:
    """zero_grad() missing: `optimizer.zero_grad()` inserted before the backward() that the next step of the
    same block applies."""
    ev = finding.get("evidence") or {}
    require(isinstance(ev.get("optimizer"), int) and ev["optimizer"] >= 0, "a hand-written update")
    stmt = _backward_statement(source, line)
    block, at = source.block_of(stmt)
    after = [_stepped_optimizer(expr_stmt_call(s)) for s in block.body[at + 1:]]
    optimizer = next((o for o in after if o), None)
    require(optimizer is not None, "no optimizer.step() after it in the same block")   # accumulation on purpose?
    require(_optimizer_like(source, optimizer, str(ev.get("optimizer_class"))), "steps something else")
    scope = source.function_of(stmt) or source.module
    elsewhere = [n for n in source.nodes(cst.Call, within=scope) if is_method_call(n, "zero_grad", optimizer)]
    stmt = _first_backward(source, block, at)
    edits = Edits()
    if elsewhere:
        # called once, outside the loop that steps: moved into it, before the backward
        loop = next((a for a in source.ancestors(stmt) if isinstance(a, (cst.For, cst.While))), None)
        require(loop is not None and len(elsewhere) == 1 and not source.below(elsewhere[0], loop),
                "zero_grad() is called in the loop already")
        outside = source.enclosing(elsewhere[0], cst.SimpleStatementLine)
        require(outside is not None and expr_stmt_call(outside) is elsewhere[0] and source.below(loop, source.parent(outside)),
                "not a statement before the loop")
        edits.remove(outside)
        edits.insert_before(stmt, outside.with_changes(leading_lines=[]))
        return edits
    edits.insert_before(stmt, statement(f"{optimizer}.zero_grad()\n", source))
    return edits


def optimizer_not_stepping(source: Source, finding: dict, line: int) -> Edits:
    """zero_grad() between backward() and step(): moved to just before backward()."""
    ev = finding.get("evidence") or {}
    if ev.get("pattern") == "never steps":
        return _scheduler_instead(source, line)
    require(ev.get("pattern") == "cleared", "not zero_grad() between backward() and step()")
    stmt = _backward_statement(source, line)
    block, at = source.block_of(stmt)
    rest = list(block.body[at + 1:])
    for i, s in enumerate(rest):
        call = expr_stmt_call(s)
        if call is not None and is_method_call(call, "zero_grad"):
            owner = dotted(call.func.value)
            require(owner and any(_stepped_optimizer(expr_stmt_call(t)) == owner for t in rest[i + 1:]),
                    "no step() of it after")
            edits = Edits()
            edits.remove(s)
            edits.insert_before(_first_backward(source, block, at), s.with_changes(leading_lines=[ln for ln in s.leading_lines
                                                                    if ln.comment is not None]))
            return edits
        require(_stepped_optimizer(call) is None, "step() comes first")
    require(False, "no zero_grad() after backward() in the block")


def _scheduler_instead(source: Source, line: int) -> Edits:
    """backward() then scheduler.step() where optimizer.step() belongs: `optimizer.step()` inserted before
    the first scheduler.step() that follows, the optimizer being the one that scheduler was built on."""
    stmt = _backward_statement(source, line)
    block, at = source.block_of(stmt)
    for later in block.body[at + 1:]:
        for node in [later, *source.nodes(cst.SimpleStatementLine, within=later)]:
            call = expr_stmt_call(node)
            if call is None or not is_method_call(call, "step"):
                continue
            receiver = dotted(call.func.value)
            bound = _bound_to(source, receiver) if receiver else []
            require(len(bound) == 1 and ".lr_scheduler." in (source.resolve(call_name(bound[0])) or "")
                    and bound[0].args and bound[0].args[0].keyword is None, "a step() that is no scheduler's")
            optimizer = dotted(bound[0].args[0].value)
            require(optimizer is not None, "no optimizer named")
            edits = Edits()
            edits.insert_before(node, statement(f"{optimizer}.step()\n", source))
            return edits
    require(False, "no scheduler.step() after backward()")


PATCHERS = {
    "gradients-accumulate": gradients_accumulate,
    "optimizer-not-stepping": optimizer_not_stepping,
}
