"""Fixed twin of update_ratio.py: SGD at lr=0.05 with momentum, so each step moves the weights by a
small but real fraction of their norm.

Finds: nothing
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
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
