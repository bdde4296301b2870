"""Bug: plain SGD started at lr=1e-7, the final value of a decay schedule passed as the initial one.

With SGD the update is lr x gradient: here each step changes the weights by ~1e-8 of their norm
(||dW||/||W||, ~1e-3 is usual), so after thousands of steps the model has barely moved from its
random initialisation.
Fixed twin: update_ratio_fixed.py (lr=0.05 with momentum).

Finds: update-ratio @ net.0
"""
import torch
from torch import nn


class TextClassifier(nn.Module):
    def __init__(self, features: int = 256, hidden: int = 128, classes: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=1e-7)         # the bug: the schedule's end value
