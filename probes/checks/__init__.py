"""Detectors: they turn what a run shows into Findings (see base.py for the two shapes).

TREE_CHECKS run on each new registration tree (at attach, and whenever the structure changes).
RUN_CHECKS run over the whole run log when a Probe closes, and again in `report`.
The runtime detectors (Watchers) live in probes/watchers: they need torch, these do not.
"""
from __future__ import annotations

from ..findings import Finding
from .base import RunData, Watcher, WatchContext
from .dynamics import gradient_depth, gradient_growth, suspicious_initial_loss, update_ratio
from .ranks import ranks_out_of_sync
from .registration import missing_super_init, unregistered_modules, unregistered_parameters
from .resources import dataloader_stall, memory_growth
from .training import (mixed_devices, nonfinite_values, optimizer_not_stepping, param_not_in_optimizer,
                       weights_not_updating)

TREE_CHECKS = (unregistered_modules, unregistered_parameters, missing_super_init)
# errors first, then warnings, then info; each check orders its own findings (tree order, then step)
RUN_CHECKS: tuple = (param_not_in_optimizer, nonfinite_values, mixed_devices, ranks_out_of_sync,
                     optimizer_not_stepping, weights_not_updating, gradient_depth, gradient_growth, memory_growth,
                     dataloader_stall, update_ratio, suspicious_initial_loss)

__all__ = ["RUN_CHECKS", "TREE_CHECKS", "RunData", "WatchContext", "Watcher", "check_run",
           "check_tree"]


def check_tree(tree: dict) -> list[Finding]:
    found: list[Finding] = []
    for check in TREE_CHECKS:
        found.extend(check(tree))
    return found


def check_run(data: RunData) -> list[Finding]:
    found: list[Finding] = []
    for check in RUN_CHECKS:
        found.extend(check(data))
    return found
