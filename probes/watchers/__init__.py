"""Runtime detectors (Watchers, see probes/checks/base.py): they hook the live model, so they import torch.

Kept apart from probes/checks, whose run and tree checks read plain data and must stay torch-free (the
dashboard and `report` run them without torch).
"""
from __future__ import annotations

WATCHERS: tuple = ()
