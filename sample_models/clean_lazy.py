"""Clean reference: lazy layers (LazyLinear) whose shapes are set by the first forward, before the
optimizer is built.

Finds: nothing
"""
import torch
from torch import nn


class LazyMLP(nn.Module):
    def __init__(self, hidden: int = 64, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(hidden), nn.ReLU(), nn.LazyLinear(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 48), torch.randint(0, 10, (batch_size,))
