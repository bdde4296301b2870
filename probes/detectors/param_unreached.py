"""param-unreached: trainable parameters the optimizer holds that no backward reaches, on each of the first
diagnostic steps (a layer defined and never used, a branch whose output is thrown away), rolled up to the
module; an error when the loss reaches no parameter at all. Seen by the watcher that walks each loss's graph
to its leaves (probes/watchers/param_unreached.py)."""
from __future__ import annotations

from typing import Callable

from ..findings import Finding
from . import gradient_chain_broken
from ._common import names as _list

CODE = "param-unreached"


def findings(step: int, sizes: dict[str, dict], held: int, groups: dict[str, list[str]], unreached: set[str],
             none_reached: bool, judged: dict[str, int], checked: int, reported: list,
             locate: Callable[[str], str | None]) -> list[Finding]:
    """One finding per module in `groups` (module -> the unreached parameter names it rolls up), or one for
    the whole model when `none_reached`. `sizes`: name -> {"shape", "numel"} of the `held` parameters the
    optimizers hold; `judged`: diagnostic steps each was judged on; `reported`: the findings so far (a
    gradient-chain-broken cut that explains them is named); `locate(module)`: the line that defines it."""
    numel = sum(sizes[n]["numel"] for n in unreached)
    cuts = [f for f in reported if f.code == gradient_chain_broken.CODE]
    found = []
    for module, names in groups.items():
        cut = next((f for f in cuts if set(names) & set(f.evidence.get("params_without_grad") or [])), None)
        why = (f" They are cut off from the loss at {cut.location or 'a line in forward'}"
               f"{' by ' + cut.evidence['op'] if cut.evidence.get('op') else ''} (see gradient-chain-broken)."
               if cut is not None else "")
        found.append(Finding(
            code=CODE, severity="error" if none_reached else "warning",
            title=(f"The loss reaches none of the {held} trainable parameters the optimizer holds"
                   if none_reached else
                   f"{module or 'The model'}: {len(names)} trainable parameter(s) held by the optimizer "
                   f"never get a gradient: the loss does not reach them"),
            detail=((f"At step {step} no backward reached any parameter the optimizer holds: nothing is "
                     f"trained. The loss was computed from values cut off from the model (.detach(), "
                     f".item(), a new tensor) or from something else than the model's outputs.")
                    if none_reached else
                    (f"On {min(judged[n] for n in names)} diagnostic steps, no backward pass reached "
                     f"{_list(names)} ({sum(sizes[n]['numel'] for n in names):,} values"
                     + (f"; {numel:,} in all" if len(groups) > 1 else "")
                     + "): the optimizer holds them, yet they never get a gradient and never change."
                     + (why or " Usually a layer defined in __init__ that forward never uses, or a branch whose "
                               "output is thrown away or cut from the graph before the loss."))),
            module=module, location=locate(module),
            evidence={"step": step, "parameters": [{"name": n, "shape": sizes[n]["shape"],
                                                    "numel": sizes[n]["numel"]} for n in names][:20],
                      "count": len(names), "held": held, "steps_checked": max(checked, 1),
                      "none_reached": none_reached},
            fix=("Compute the loss from the model's outputs so that backward reaches the parameters."
                 if none_reached else
                 "Use the layer in forward (and its output in the loss), or remove it; if it must stay but "
                 "not train, leave it out of the optimizer or call requires_grad_(False) on it.")))
        if none_reached:
            break
    return found
