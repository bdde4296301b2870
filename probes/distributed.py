"""torch.distributed, seen from a Probe: which rank this is, and one run name agreed by every rank.

Each rank writes its own run log under the same run: rank 0 at <run>/run.db (so every single-run tool
reads it as the run), rank r at <run>/rank<r>/run.db (runs.rank_runs lists them). The name is agreed
through the process group's key-value store, not a collective: a Probe built on some ranks only must
not hang the job, and a rank that waits for a name too long goes on under a name of its own.
"""
from __future__ import annotations

import itertools
import warnings
from datetime import timedelta
from typing import Any

import torch

NAME_WAIT_S = 30.0          # how long rank r waits for rank 0's run name before going on alone
_probe_numbers = itertools.count()      # the n-th Probe of this process matches the n-th on every rank


def rank_info() -> dict[str, Any] | None:
    """rank, world_size and backend when torch.distributed is initialised with more than one rank."""
    dist = torch.distributed
    try:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return {"rank": dist.get_rank(), "world_size": dist.get_world_size(), "backend": str(dist.get_backend())}
    except Exception:       # noqa: BLE001 - an odd process group must not stop training
        return None


def agree_run_name(rank: int, proposed: str, wait_s: float = NAME_WAIT_S) -> str | None:
    """Rank 0 publishes `proposed`; any other rank returns rank 0's name (None if it never came)."""
    key = f"forgescope/run-name/{next(_probe_numbers)}"
    try:
        store = torch.distributed.distributed_c10d._get_default_store()
        if rank == 0:
            store.set(key, proposed)
            return proposed
        store.wait([key], timedelta(seconds=wait_s))
        return store.get(key).decode()
    except Exception as e:      # noqa: BLE001 - no store, a timeout: this rank records on its own
        warnings.warn(f"ForgeScope: rank {rank} got no run name from rank 0 ({type(e).__name__}: {e}); "
                      f"recording this rank as a run of its own", stacklevel=3)
        return None
