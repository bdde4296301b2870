"""compile-graph-breaks: opt-in (`--compile-check`), info: where torch.compile would split forward, with the
user's line and the reason. probes/compile_check.py runs torch._dynamo.explain; the findings are written here.
When explain itself cannot run, one finding of this code says so, with evidence {"ran": false} (the codes
are public, so this reuses the code rather than inventing one).
"""
from __future__ import annotations

import re

from ..findings import Finding

CODE = "compile-graph-breaks"

# (pattern in the reason, the fix): first match wins
_FIXES = (
    (re.compile(r"item\(\)|capture_scalar_outputs|tolist", re.I),
     "Keep the value a tensor (torch.where instead of an `if` on .item(), for instance), or move the "
     ".item()/logging out of forward into the training loop."),
    (re.compile(r"\bprint\b|logging|logger|warn", re.I),
     "Move the print/logging out of forward (log from the training loop), or guard it with "
     "`if not torch.compiler.is_compiling():`."),
    (re.compile(r"dynamic shape|output shape depends|nonzero|capture_dynamic_output_shape_ops", re.I),
     "Use a fixed-shape alternative (masking with torch.where instead of nonzero/boolean indexing), or "
     "set torch._dynamo.config.capture_dynamic_output_shape_ops = True."),
    (re.compile(r"data.dependent|jump|branch|generic_jump|control flow", re.I),
     "Replace the Python `if` on a tensor value with torch.where (or torch.cond), so the branch stays in "
     "the graph."),
    (re.compile(r"numpy|skip|non.traceable|not supported|unsupported|builtin|c extension", re.I),
     "Do this with torch operations instead of a library/Python call dynamo cannot trace, or move the call "
     "out of forward (torch.compiler.disable on a helper keeps the break but makes it explicit)."),
)
_DEFAULT_FIX = ("Rewrite this line with traceable torch operations or move it out of forward; the reason's "
                "hint says what dynamo could not trace.")


def fix_for(text: str) -> str:
    return next((fix for pattern, fix in _FIXES if pattern.search(text)), _DEFAULT_FIX)


def graph_break(reason: str, explanation: str, count: int, where: str | None, graph_count: int,
                graph_break_count: int, break_locations: int) -> Finding:
    """explain broke the graph `count` times at `where` for `reason` (and its `explanation`, if any)."""
    times = f" ({count} times)" if count > 1 else ""
    return Finding(
        code=CODE, severity="info", title=f"torch.compile graph break: {reason}",
        detail=(f"torch._dynamo.explain found a graph break here{times}: "
                f"{explanation or reason}. Each break splits the compiled graph in two and returns to "
                f"Python, so torch.compile optimises less (and recompiles more) than it could."),
        location=where,
        evidence={"reason": reason, "count": count, "graph_count": graph_count,
                  "graph_break_count": graph_break_count, "break_locations": break_locations},
        fix=fix_for(reason + " " + explanation))


def frame_skipped(reason: str, explanation: str, text: str, count: int, where: str | None,
                  skipped: bool) -> Finding:
    """Dynamo captured no graph at all (`text`: why, as dynamo counted it; `skipped`: it says it skipped the
    frame at `where`)."""
    return Finding(
        code=CODE, severity="info", title=f"torch.compile cannot capture forward: {reason}",
        detail=(f"torch._dynamo.explain captured no graph at all: {explanation or reason}. A graph break "
                f"inside a for/while loop makes torch.compile skip the whole frame and run it eagerly."),
        location=where,
        evidence={"reason": reason, "count": count, "graph_count": 0, "frame_skipped": skipped},
        fix=fix_for(text) + " A break inside a loop skips the whole forward: fixing it matters more than usual.")


def unavailable(why: str) -> Finding:
    """explain could not run (`why`): the check goes on without it."""
    return Finding(
        code=CODE, severity="info", title="the torch.compile check could not run",
        detail=(f"--compile-check runs torch._dynamo.explain on a copy of the model; here it failed "
                f"({why}), so graph breaks were not looked for. The rest of the check is unaffected."),
        evidence={"ran": False, "error": why},
        fix="Nothing to fix in the model for this; try torch.compile(model) directly to see the full error.")
