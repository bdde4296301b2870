"""Detectors: one module per finding code, named after it, the only place that builds a Finding of that code.

Each module holds its code's wording (title, detail, fix) and, where the code has one, its tree check (on
each registration tree) or run check (over the run log, when a Probe closes and again in `report`). The
runtime watchers (probes/watchers, which need torch) observe the live model and call their code's module
to build each finding. Nothing here imports torch: the dashboard and `report` run these checks without it.
probes/catalog.py lists every code with its module, watcher, samples and chart (`python -m probes codes`).

Shared helpers: _common.py (tree, series, wording), _depth.py (the gradient-depth profile that vanishing-
and exploding-gradients judge), thresholds.py (every threshold, with its reason), base.py (RunData,
WatchContext, Watcher).
"""
from __future__ import annotations

from ..findings import Finding
from . import (dataloader_stall, exploding_gradients, gradient_chain_broken, memory_growth, missing_super_init,
               mixed_devices, nonfinite_values, optimizer_not_stepping, param_not_in_optimizer, ranks_out_of_sync,
               suspicious_initial_loss, unregistered_module, unregistered_parameter, update_ratio,
               vanishing_gradients, weights_not_updating)
from ._depth import stacks
from .base import RunData, Watcher, WatchContext


def gradient_depth(data: RunData) -> list[Finding]:
    """vanishing-gradients and exploding-gradients across depth, for each network an optimizer trains in turn
    (a GAN's generator and critic are two stacks, not one); one depth profile says at most one of the two."""
    found: list[Finding] = []
    for blocks in stacks(data):
        found += vanishing_gradients.across_depth(data, blocks)
        found += exploding_gradients.across_depth(data, blocks)
    return found


TREE_CHECKS = (unregistered_module.unregistered_modules, unregistered_parameter.unregistered_parameters,
               missing_super_init.missing_super_init)
# errors first, then warnings, then info; each check orders its own findings (tree order, then step)
RUN_CHECKS: tuple = (param_not_in_optimizer.param_not_in_optimizer, nonfinite_values.nonfinite_values,
                     mixed_devices.mixed_devices, ranks_out_of_sync.ranks_out_of_sync,
                     optimizer_not_stepping.optimizer_not_stepping, weights_not_updating.weights_not_updating,
                     gradient_depth, exploding_gradients.gradient_growth, memory_growth.memory_growth,
                     dataloader_stall.dataloader_stall, update_ratio.update_ratio,
                     suspicious_initial_loss.suspicious_initial_loss)

# one bug, one finding: a code whose finding may only repeat what another finding already says
_EXPLAINED = {gradient_chain_broken.CODE: gradient_chain_broken.explained,
              optimizer_not_stepping.CODE: optimizer_not_stepping.explained,
              memory_growth.CODE: memory_growth.explained,
              param_not_in_optimizer.CODE: param_not_in_optimizer.explained}

__all__ = ["RUN_CHECKS", "TREE_CHECKS", "RunData", "WatchContext", "Watcher", "check_run", "check_tree",
           "explained_elsewhere", "gradient_depth"]


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


def explained_elsewhere(finding: dict, others: list[dict]) -> bool:
    """One bug, one finding: is this finding (a dict) only a consequence of another one in `others`? Each
    code's own module says when (its `explained`): a loss without a graph after a cut seen in forward, the
    end-of-run optimizer verdict after the live one, the RSS slope after kept graphs, the parameters of a
    layer built in forward that no optimizer holds."""
    rule = _EXPLAINED.get(finding.get("code"))
    return bool(rule is not None and rule(finding, others))
