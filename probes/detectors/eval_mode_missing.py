"""eval-mode-missing: a validation or inference pass without model.eval(): Dropout/BatchNorm in training mode
under no_grad, or in forwards that no backward uses, and a functional dropout that keeps dropping in eval
mode. Seen by the watcher on the model's forward (probes/watchers/eval_mode_missing.py)."""
from __future__ import annotations

from ..findings import Finding

CODE = "eval-mode-missing"


def functional_dropout(p: float, module: str | None, where: str | None) -> Finding:
    """F.dropout(x, p) ran with training=True (its default) at `where`, in module `module`, in eval mode."""
    return Finding(
        code=CODE, severity="warning",
        title="F.dropout keeps dropping after model.eval(): it is called without training=self.training",
        detail=(f"The model is in eval mode, yet a functional dropout (p={p:g}) ran with training=True — the "
                f"default of torch.nn.functional.dropout — so evaluation and inference drop units at random: "
                f"predictions are noisy and differ from run to run. model.eval() only switches nn.Dropout "
                f"modules."),
        module=module, location=where,
        evidence={"p": p, "context": "eval mode", "functional": True},
        fix=("Pass the module's mode: F.dropout(x, p, training=self.training), or use an nn.Dropout module "
             "(model.eval() then switches it off)."))


def training_mode(modules: list[tuple[str, str]], context: str, where: str | None, passes: int) -> Finding:
    """`modules`: (name, class) of the Dropout/BatchNorm modules that ran in training mode, under `context`
    (torch.no_grad(), torch.inference_mode(), or "gradients on": `passes` forwards no backward used)."""
    kinds = sorted({cls for _, cls in modules})
    graded = context == "gradients on"
    bn = any("BatchNorm" in cls for cls in kinds)
    return Finding(
        code=CODE, severity="warning",
        title=(f"{'/'.join(kinds)} ran in training mode in {passes} forward passes that no backward used: "
               f"model.eval() is missing" if graded else
               f"{'/'.join(kinds)} ran in training mode under {context}: model.eval() is missing"),
        detail=(("Forward passes ran in training mode and their outputs never reached a backward pass — a "
                 "validation or inference pass without model.eval() (and without torch.no_grad(), so each "
                 "one also built an autograd graph for nothing). " if graded else
                 "A forward pass ran without gradients while the model was in training mode — a "
                 "validation or inference pass without model.eval(). ")
                + ("Dropout drops units at random, so the predictions are noisy. " if any(
                    "Dropout" in c for c in kinds) else "")
                + ("BatchNorm normalises with each batch's own statistics and overwrites its running "
                   "statistics with validation data." if bn else "")).strip(),
        module=modules[0][0] if modules else None, location=where,
        evidence={"modules": [name for name, _ in modules][:20], "classes": kinds,
                  "count": len(modules), "context": context, "passes": passes},
        fix=("Call model.eval() before validation and model.train() after it (torch.no_grad() only "
             "turns off gradients, not Dropout or BatchNorm's training behaviour)"
             + ("; run validation under torch.no_grad() too." if graded else ".")))
