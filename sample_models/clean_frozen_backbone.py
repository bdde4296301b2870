"""Clean reference: transfer learning with a frozen backbone (requires_grad=False) and an optimizer over
the new head only. The frozen weights get no gradients, so they need no optimizer.

Finds: nothing
"""
import torch
from torch import nn


class FrozenBackbone(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64, classes: int = 5):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.backbone.requires_grad_(False)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def make_optimizer(model: FrozenBackbone) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.head.parameters(), lr=1e-3)
