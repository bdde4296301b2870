"""`checkpoint MODEL_FILE CHECKPOINT` in the worker: the model built as a check builds it (on the CPU, nothing
trained), then the checkpoint read with weights_only=True (no pickled code runs) and compared with the model's
state_dict (probes/checkpoint.py)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .check import Check
from .checkpoint import compare, load_checkpoint


class CheckpointCheck(Check):
    """Stages load, build, compare and close: a failure says which, as a check's does."""

    def __init__(self, config):
        super().__init__(config)
        self.cfg = dataclasses.replace(self.cfg, device="cpu")

    def _run(self) -> None:
        self.load()
        self._make_model()
        self.compare()

    def compare(self) -> None:
        self._begin("compare", "reading the checkpoint")
        checkpoint = Path(self.cfg.checkpoint)
        loaded, refused = load_checkpoint(checkpoint)
        if refused is not None:
            self.extra.append(refused)
            return
        found, held = compare(self.model.state_dict(), loaded, checkpoint)
        self.extra += found
        self.result.checkpoint = held
