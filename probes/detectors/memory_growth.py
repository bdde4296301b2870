"""memory-growth: memory that grows step over step until the run dies.

Seen two ways. Live, from autograd (probes/watchers/memory_growth.py): the graphs of earlier steps still
alive (`kept_graphs`), or a backward that reached an earlier step's graph (`carried_graph`); then, at the end
of the run, the run check: a robust slope of CUDA memory or of the process's RSS (which the kept graphs,
when seen, already explained).
"""
from __future__ import annotations


from ..findings import Finding
from ..stats import memory_trend
from . import thresholds as T
from .base import RunData

CODE = "memory-growth"


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# -- memory-growth ------------------------------------------------------------------------------------
def memory_growth(data: RunData) -> list[Finding]:
    found = []
    for column, label, slope_min, floor in (
            ("mem.cuda_allocated_bytes", "CUDA allocated memory", T.MEMORY_CUDA_SLOPE, T.MEMORY_CUDA_FLOOR),
            ("mem.rss_bytes", "process RSS", T.MEMORY_RSS_SLOPE, T.MEMORY_RSS_FLOOR)):
        # the trend the Memory page shows too (probes.stats)
        trend = memory_trend(data.scalars, column, skip=T.MEMORY_SKIP_STEPS, window=T.MEMORY_WINDOW,
                             min_steps=T.MEMORY_MIN_STEPS)
        if trend is None:
            continue
        x, y, slope, growth = trend.steps, trend.values, trend.slope, trend.fitted_growth
        halves = list(trend.half_slopes)
        # sustained: both halves of the window climb too (a one-time jump climbs in one half only)
        if slope < slope_min or growth < floor or min(halves) < slope_min / 2:
            continue
        found.append(Finding(
            code=CODE, severity="warning",
            title=f"{label[0].upper() + label[1:]} grows {_mib(slope)} per step ({_mib(y[-1] - y[0])} over "
                  f"steps {int(x[0])}-{int(x[-1])})",
            detail=(f"{label[0].upper() + label[1:]} rose steadily from {_mib(y[0])} to {_mib(y[-1])}: something "
                    f"keeps a reference every step. The usual culprit is accumulating a tensor that carries "
                    f"its autograd graph (total_loss += loss, a list of outputs or losses), which keeps every "
                    f"step's activations alive; the run will eventually run out of memory."),
            module=None, location=None,
            evidence={"series": column, "slope_bytes_per_step": slope, "growth_bytes": float(y[-1] - y[0]),
                      "fitted_growth_bytes": growth, "half_slopes": halves,
                      "steps": [int(s) for s in x[:50]], "bytes": [float(v) for v in y[:50]],
                      "threshold_bytes_per_step": slope_min, "floor_bytes": floor},
            fix=("Store plain numbers, not tensors: total_loss += loss.item() (or loss.detach()); run "
                 "validation under torch.no_grad().")))
        break           # CUDA memory says it more precisely; RSS would repeat it
    return found



# -- seen live, from autograd -------------------------------------------------------------------------
def kept_graphs(step: int, kept: list[int], kinds: list[str], where: str | None) -> Finding:
    """At `step`, the graphs of the earlier steps `kept` (of these kinds: "model output", "loss") still live."""
    what = " and ".join(f"the {k}es" if k.endswith("s") else f"the {k}s" for k in kinds)
    return Finding(
        code=CODE, severity="warning",
        title=f"The autograd graphs of {len(kept)} earlier steps are still alive: memory grows every step",
        detail=(f"At step {step}, {what} of steps {', '.join(map(str, kept[:8]))}"
                f"{' ...' if len(kept) > 8 else ''} still hold their autograd graphs, so every activation "
                f"those graphs saved stays in memory. Something keeps the tensors themselves: a list of "
                f"outputs or losses, or a running total (total_loss += loss). Memory grows by one step's "
                f"graph per step until the run runs out of memory."),
        module=None, location=where,
        evidence={"step": step, "kept_steps": kept[:50], "kinds": kinds},
        fix=("Keep plain numbers, not tensors: total_loss += loss.item(), history.append(out.detach()), or "
             "run forwards you only monitor under torch.no_grad()."))


def carried_graph(step: int, kept: list[int], error: str, where: str | None) -> Finding:
    """backward() at `step` failed with `error` on the graph of the earlier steps `kept`, still alive."""
    return Finding(
        code=CODE, severity="warning",
        title=f"Backward at step {step} reached the graph of step {kept[0]}: a tensor is carried "
              f"across steps with its graph",
        detail=(f"backward() failed at step {step} ({error.strip().splitlines()[0][:160]}) while the "
                f"autograd graph of step(s) {', '.join(map(str, kept[:8]))} is still alive: a tensor made in "
                f"an earlier step, still attached to its graph, is used again (an RNN's hidden state kept "
                f"between batches without .detach()). With retain_graph=True it does not fail but keeps "
                f"every step's graph: memory grows until the run dies."),
        module=None, location=where,
        evidence={"step": step, "kept_steps": kept[:50], "error": error.strip()[:300]},
        fix=("Detach what is carried between steps: hidden = tuple(h.detach() for h in hidden) before the "
             "next batch (truncated backpropagation through time); do not use retain_graph=True for this."))


def explained(finding: dict, others: list[dict]) -> bool:
    """The RSS slope (the run check) repeats what the kept autograd graphs already said, later."""
    return "kept_steps" not in (finding.get("evidence") or {}) and any(
        o.get("code") == CODE and "kept_steps" in (o.get("evidence") or {}) for o in others)
