"""Bug: fine-tuning with the optimizer built over the backbone only; the new classification head is left out.

The head receives gradients every step, but no optimizer param group holds it, so it keeps its random
initial weights while the backbone adapts to them.
Fixed twin: param_not_in_optimizer_fixed.py (the optimizer covers model.parameters()).

Finds: param-not-in-optimizer @ head at the bug
"""
import torch
from torch import nn


class FineTuner(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64, classes: int = 5):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def make_optimizer(model: FineTuner) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.backbone.parameters(), lr=1e-3)      # the bug: the head is missing
