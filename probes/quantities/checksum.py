"""Per-parameter checksums for comparing ranks: the L2 norm of every weight after the step's update.

Data-parallel replicas hold the same weights after every step; the norms are compared across ranks when
the run is read (detectors/ranks_out_of_sync.py). One fused pass over the weights, only on due steps and
only when torch.distributed runs more than one rank.
"""
from __future__ import annotations

from .base import Quantity, fused_norms


class ParamChecksum(Quantity):
    name = "param_checksum"

    def step_end(self, ctx):
        return {"param_checksum": (ctx.names, fused_norms([p.detach() for p in ctx.params]))}
