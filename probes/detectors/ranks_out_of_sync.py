"""ranks-out-of-sync: parameters that differ between the ranks of a data-parallel torch.distributed run.

In data-parallel training every rank holds the same parameters after every step. Each rank records the
norm of every weight every `sync_check` steps (ParamChecksum); this run check compares them step by step
(each rank's own log, read together). Ranks whose models differ on purpose (sharded or pipeline-parallel
parameters) have different parameter names or sizes and are not compared.
"""
from __future__ import annotations

import numpy as np

from ..findings import Finding
from . import thresholds as T
from ._common import module_location, names as _names
from .base import RunData

CODE = "ranks-out-of-sync"


def ranks_out_of_sync(data: RunData) -> list[Finding]:
    sums = {r: d.series("param_checksum") for r, d in sorted(data.ranks.items())}
    sums = {r: f for r, f in sums.items() if not f.empty}
    if len(sums) < 2:
        return []
    ref_rank, ref = next(iter(sums.items()))
    sizes = {data.ranks[r].meta.get("param_numel") for r in sums}
    if len(sizes) > 1 or any(list(f.columns) != list(ref.columns) for f in sums.values()):
        return []           # not replicas: each rank holds its own part of the model
    steps = ref.index
    for frame in sums.values():
        steps = steps.intersection(frame.index)
    if steps.empty:
        return []
    steps = steps.sort_values()
    a = ref.loc[steps].to_numpy(dtype=np.float64)
    apart = np.zeros(a.shape, dtype=bool)           # step x parameter: some rank disagrees with ref_rank
    others = {}
    for rank, frame in sums.items():
        if rank == ref_rank:
            continue
        b = frame.loc[steps].to_numpy(dtype=np.float64)
        scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)
        differs = (np.abs(a - b) / scale > T.RANK_SYNC_RTOL) & np.isfinite(a) & np.isfinite(b)
        apart |= differs
        others[rank] = (b, differs)
    rows = np.flatnonzero(apart.any(axis=1))
    if not len(rows):
        return []
    first = int(rows[0])
    names = list(ref.columns)
    drifted = [names[j] for j in np.flatnonzero(apart[first])]
    ranks = sorted(r for r, (_, d) in others.items() if d[first].any())
    module = _common_owner(drifted)
    evidence_params = []
    for n in drifted[:20]:
        j = names.index(n)
        evidence_params.append({"name": n, "norms": {str(ref_rank): float(a[first, j]),
                                                     **{str(r): float(others[r][0][first, j]) for r in ranks}}})
    step = int(steps[first])
    still = bool(apart[-1].any())
    return [Finding(
        code=CODE, severity="error",
        title=(f"{f'All {len(names)} parameters' if len(drifted) == len(names) else _names(drifted)} differ "
               f"between rank {ref_rank} and rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))} "
               f"(from step {step})"),
        detail=(f"In data-parallel training every rank holds the same parameters after every step: "
                f"DistributedDataParallel copies rank 0's parameters when it is built and then gives every rank "
                f"the same averaged gradient. At step {step}, {len(drifted)} parameter(s) were no longer equal "
                f"across ranks{' and they still differ at the last step compared' if still else ''}, so the "
                f"ranks train different models and the averaged gradient mixes them. Usually a change made on "
                f"some ranks only after the model was wrapped: a checkpoint loaded on rank 0 only, a "
                f"layer re-initialised or replaced on one rank, an update done outside the optimizer."),
        module=module, location=module_location(data.tree, module),
        evidence={"first_step": step, "ranks": [ref_rank, *ranks], "parameters": evidence_params,
                  "count": len(drifted), "steps_compared": int(len(steps)),
                  "steps_apart": int(len(rows))},
        fix=("Make the change on every rank, or before wrapping the model in DistributedDataParallel (it "
             "broadcasts rank 0's parameters and buffers when it is built): e.g. load the checkpoint on every "
             "rank with map_location, then wrap. Change parameters only through the optimizer, on all ranks."))]


def _common_owner(names: list[str]) -> str:
    """The innermost module holding every one of these parameters ('' for the model itself)."""
    paths = [n.split(".")[:-1] for n in names]
    common = []
    for parts in zip(*paths):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return ".".join(common)
