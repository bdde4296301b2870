"""optimizer-not-stepping: backward runs, and an optimizer never applies what it computed.

Live, from the watcher (probes/watchers/optimizer_not_stepping.py): step() on gradients already cleared
(`cleared`), step() with no gradient at all (`no_gradients`), backward() and zero_grad() while step() never
runs (`never_steps`). At the end of the run, the run check: backward ran and no optimizer ever stepped, or
one of several never did, and none of its weights changed.
"""
from __future__ import annotations

from ..findings import Finding
from ..stats import finite, parameters
from ._common import common_parent, module_location, module_order, optimizer_location, outermost, trainable_under
from .base import RunData

CODE = "optimizer-not-stepping"


# -- the run check ------------------------------------------------------------------------------------
def optimizer_not_stepping(data: RunData) -> list[Finding]:
    """The end-of-run verdict: backward ran and an optimizer never stepped (the Probe's watcher names the
    other patterns live: zero_grad between backward and step, step without gradients)."""
    return never_stepped(data)


def never_stepped(data: RunData) -> list[Finding]:
    """backward() ran, yet not one optimizer step ended a step: optimizer.step() is never called."""
    calls = data.meta.get("backward_calls") or 0
    if calls and data.meta.get("optimizers") and len(data.scalars):
        return _one_never_stepped(data)
    if not calls or not data.meta.get("optimizers") or "loss" in data.scalars.columns and len(data.scalars):
        return []
    if data.meta.get("weights_changed") is not False:
        return []           # the weights did change (or could not be compared): something else stepped them
    held = [t["name"] for t in parameters(data.tree) if t["optimizer"] is not None and t["requires_grad"]]
    if not held:
        return []
    return [Finding(
        code=CODE, severity="error",
        title=f"backward() ran {calls} time(s) but optimizer.step() was never called: no weight changed",
        detail=(f"The loop computed gradients {calls} time(s), and the optimizer "
                f"({', '.join(o.get('class', '?') for o in data.meta['optimizers'])}) never stepped, so all "
                f"{len(held)} parameter(s) it holds are exactly as they were initialised. Often "
                f"scheduler.step() is called where optimizer.step() belongs, or the step sits in a branch "
                f"that never runs."),
        module="", location=optimizer_location(data, range(len(data.meta.get("optimizer_locations") or [])))
        or module_location(data.tree, ""),
        evidence={"backward_calls": calls, "optimizer_steps": 0, "parameters": held[:20], "count": len(held)},
        fix="Call optimizer.step() after loss.backward() in every training step (then scheduler.step()).")]


def _one_never_stepped(data: RunData) -> list[Finding]:
    """With several optimizers: one of them never stepped while the others did, and none of the weights it
    holds changed although they got gradients (a GAN whose discriminator's optimizer.step() is missing)."""
    steps = data.meta.get("optimizer_steps") or []
    moved = data.meta.get("optimizer_weights_changed") or []
    if len(steps) < 2 or len(moved) != len(steps) or not any(steps):
        return []
    grads = finite(data.series("grad_norm"))
    found = []
    for i, (n, changed) in enumerate(zip(steps, moved)):
        if n or changed is not False:
            continue
        held = [t for t in parameters(data.tree) if t["optimizer"] == i and t["requires_grad"]]
        with_grad = [t for t in held if t["name"] in grads.columns and (grads[t["name"]] > 0).any()]
        if not with_grad:
            continue
        modules = sorted({t["module"] for t in held}, key=lambda m: module_order(data.tree).get(m, 0))
        module = outermost(common_parent(modules), {t["name"] for t in held}, trainable_under(data.tree))
        cls = data.meta["optimizers"][i].get("class", "optimizer") if i < len(data.meta["optimizers"]) else "?"
        found.append(Finding(
            code=CODE, severity="error",
            title=f"Optimizer {i} ({cls}, over {module or 'the model'}) never stepped: its weights never change",
            detail=(f"The other optimizer(s) stepped {', '.join(str(s) for s in steps if s)} time(s), but optimizer "
                    f"{i} ({cls}) never did, while the {len(with_grad)} parameter(s) it holds got gradients on every "
                    f"step. They are exactly as they were initialised: its optimizer.step() is missing, or sits "
                    f"in a branch that never runs."),
            module=module, location=optimizer_location(data, [i]) or module_location(data.tree, module),
            evidence={"optimizer": i, "optimizer_steps": steps, "parameters": [t["name"] for t in held][:20],
                      "count": len(held)},
            fix=f"Call optimizer {i}'s step() after its loss.backward() in every iteration."))
    return found


# -- seen live ----------------------------------------------------------------------------------------
def _live(title: str, detail: str, fix: str, evidence: dict, location: str | None) -> Finding:
    return Finding(code=CODE, severity="error", title=title, detail=detail, module="", location=location,
                   evidence=evidence, fix=fix)


def cleared(step: int, optimizer: int, cls: str, reached: int, backward_calls: int,
            location: str | None) -> Finding:
    """step() of optimizer `optimizer` (class `cls`) found every gradient None again, after a backward that
    reached `reached` of its parameters."""
    return _live(
        title=f"{cls}.step() runs on gradients already cleared: zero_grad() sits between backward() and step()",
        detail=(f"At step {step}, backward() reached {reached} parameter(s) of {cls}, but when step() ran "
                f"every one of its gradients was None again: optimizer.zero_grad() (or model.zero_grad()) "
                f"was called after backward() and before step(). The optimizer has nothing to apply, so the "
                f"weights never change (momentum alone may drift them)."),
        fix=("Order each iteration as zero_grad(), forward, loss.backward(), optimizer.step() — or backward(), "
             "step(), zero_grad() — never zero_grad() between backward() and step()."),
        evidence={"step": step, "optimizer": optimizer, "optimizer_class": cls, "pattern": "cleared",
                  "parameters_reached": reached, "backward_calls": backward_calls},
        location=location)


def no_gradients(step: int, optimizer: int, cls: str, steps_without: int, location: str | None) -> Finding:
    """step() ran `steps_without` times in a row with no gradient and no backward in between."""
    return _live(
        title=f"{cls}.step() is called with no gradients at all: backward() never runs",
        detail=(f"By step {step}, {cls}.step() had run {steps_without} times in a row with the "
                f"gradient of every parameter it holds None and no loss.backward() in between: the optimizer "
                f"has nothing to apply and no weight changes."),
        fix="Call loss.backward() before optimizer.step() in every iteration.",
        evidence={"step": step, "optimizer": optimizer, "optimizer_class": cls, "pattern": "no gradients",
                  "steps_without_gradients": steps_without},
        location=location)


def never_steps(step: int, classes: str, cleared_cycles: int, location: str | None) -> Finding:
    """Backward passes ran, their gradients were cleared between them `cleared_cycles` times, and no
    optimizer (`classes`) ever stepped."""
    return _live(
        title="backward() and zero_grad() run, but optimizer.step() never does",
        detail=(f"{cleared_cycles + 1} backward passes ran and the gradients were cleared between them, "
                f"yet the optimizer ({classes}) never stepped: every gradient is computed and thrown away, and "
                f"no weight changes. Often scheduler.step() is called where optimizer.step() belongs, or the "
                f"step sits in a branch that never runs."),
        fix="Call optimizer.step() after loss.backward() in every training step (then scheduler.step()).",
        evidence={"step": step, "pattern": "never steps", "optimizer_steps": 0,
                  "cleared_between_backwards": cleared_cycles},
        location=location)


def explained(finding: dict, others: list[dict]) -> bool:
    """The end-of-run verdict repeats what the Probe saw live (zero_grad and backward, never a step)."""
    if "pattern" in (finding.get("evidence") or {}):
        return False
    return any(o.get("code") == CODE and "pattern" in (o.get("evidence") or {}) for o in others)
