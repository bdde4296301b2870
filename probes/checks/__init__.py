"""Detectors: each reads plain data (a registration tree, recorded statistics) and returns Findings.

A detector is a function `(tree) -> list[Finding]` registered in TREE_CHECKS; the Probe runs them on each
new tree snapshot. Detectors never touch tensors or modules, so `report` can run them on a saved log.
"""
from __future__ import annotations

from ..findings import Finding
from .registration import missing_super_init, unregistered_modules, unregistered_parameters

TREE_CHECKS = (unregistered_modules, unregistered_parameters, missing_super_init)


def check_tree(tree: dict) -> list[Finding]:
    found: list[Finding] = []
    for check in TREE_CHECKS:
        found.extend(check(tree))
    return found
