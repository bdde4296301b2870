"""gradient-chain-broken: forward, or the loss, cut the autograd graph, so parameters it should train get no
gradient. Every shape of it is seen live (probes/watchers/gradient_chain_broken.py):

* `cut`: an operation in forward (.detach(), .item(), .numpy(), .data, a torch.no_grad() region after
  trained layers, reentrant checkpointing on inputs without grad) left parameters used before it with
  `grad is None` after backward;
* `zero_gradients`: the loss reaches the parameters only through round/floor/sign..., whose derivative is 0;
* `no_graph`: backward() is called on a loss without a graph (it is about to raise);
* `unreached`: backward() runs on a loss whose graph reaches no trainable parameter of the model.
"""
from __future__ import annotations

from ..findings import Finding

CODE = "gradient-chain-broken"


def cut(op: str, params: list[str], module: str | None, where: str | None, step: int) -> Finding:
    """`op` at `where` (in module `module`'s forward) cut off these parameters (names) at `step`."""
    on = "inside forward" if op.startswith(("torch.no_grad", "checkpoint")) else "on a tensor that requires grad"
    return Finding(
        code=CODE, severity="error",
        title=f"{op} in forward cuts the gradient chain: earlier layers never train",
        detail=(f"{op} {on} turns the rest of the forward into a constant for "
                f"autograd. After backward, {len(params)} parameter(s) used before it have no gradient "
                f"(grad is None), so the optimizer never updates them."),
        module=module, location=where,
        evidence={"op": op, "params_without_grad": params[:20], "count": len(params), "step": step},
        fix=(("Take the layers and operations of the training forward out of the torch.no_grad() block (it is "
              "for evaluation); to freeze part of the model, call requires_grad_(False) on its parameters "
              "instead." if op == "torch.no_grad()" else
              "Pass inputs that require grad to the checkpointed function, or use "
              "checkpoint(..., use_reentrant=False)." if op.startswith("checkpoint") else
              "Keep the computation in torch tensors with gradients: drop the "
              f"{op} (use torch ops instead of numpy/Python numbers); detach only what must not be trained, "
              "e.g. a straight-through estimator x + (q - x).detach().")))


def zero_gradients(step: int, ops: list[str], count: int, where: str | None) -> Finding:
    """At `step` the loss reached the parameters only through the zero-derivative `ops`: all `count`
    gradients are exactly 0."""
    return Finding(
        code=CODE, severity="error",
        title=f"{', '.join(ops)} between the model and the loss: every gradient is exactly zero",
        detail=(f"At step {step} the loss reaches the model's parameters only through {', '.join(ops)}, whose "
                f"derivative is zero wherever it exists, so all {count} gradients are exactly 0: backward "
                f"runs, the optimizer steps, and no weight moves."),
        module="", location=where,
        evidence={"step": step, "zero_derivative_ops": ops, "parameters_with_zero_grad": count},
        fix=("Compute the loss on the unrounded output and round only for inference or metrics; if the "
             "forward must round, pass the gradient straight through: x + (torch.round(x) - x).detach()."))


def no_graph(step: int, where: str | None) -> Finding:
    """At `step`, backward() was called at `where` on a loss that does not require grad."""
    return Finding(
        code=CODE, severity="error",
        title="backward() is called on a loss with no autograd graph: the chain from the model is cut",
        detail=(f"At step {step} the loss does not require grad, so backward() fails (\"element 0 of "
                f"tensors does not require grad\"). Somewhere between the model's parameters and the loss "
                f"the computation left autograd: .detach(), .data, .item() or .numpy() and back, a new "
                f"torch.tensor(...) from values, or an operation with no gradient (argmax, round, a "
                f"comparison, a cast to an integer type)."),
        module="", location=where,
        evidence={"step": step, "loss_requires_grad": False, "no_graph": True},
        fix=("Compute the loss from the model's outputs with differentiable torch operations; use the "
             "logits (not argmax/rounded predictions) in the loss, and detach only what must not train."))


def unreached(step: int, backward_calls: int, grad_fn: str | None, trainable: int, where: str | None) -> Finding:
    """At `step`, `backward_calls` backward calls (the first at `where`, on a loss whose grad_fn is
    `grad_fn`, None for a leaf) reached none of the model's `trainable` parameters."""
    leaf = grad_fn is None
    return Finding(
        code=CODE, severity="error",
        title="backward() runs on a loss that does not depend on the model's parameters",
        detail=(f"At step {step}, {backward_calls} backward call(s) ran on a loss whose autograd graph "
                f"reaches none of the model's trainable parameters"
                + (" — the loss is a leaf tensor, built from plain numbers (torch.tensor(..., "
                   "requires_grad=True) around a loss.item() or a NumPy value)" if leaf else
                   " — it was computed from detached outputs")
                + ". Backward runs and the optimizer steps, but no parameter gets a gradient: the model "
                  "never learns."),
        module="", location=where,
        evidence={"step": step, "backward_calls": backward_calls, "loss_grad_fn": grad_fn,
                  "trainable_parameters": trainable},
        fix=("Compute the loss from the model's outputs with torch operations and call backward on that "
             "tensor; never rebuild it with torch.tensor(loss.item()) or from .detach()/.numpy() values."))


def explained(finding: dict, others: list[dict]) -> bool:
    """A loss without a graph is explained by the cut in forward that made it, when that was seen."""
    if not (finding.get("evidence") or {}).get("no_graph"):
        return False
    return any(o.get("code") == CODE and (o.get("evidence") or {}).get("op") for o in others)
