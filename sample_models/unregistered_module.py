"""Bug: hidden layers kept in a plain Python list. They run, but the optimizer never sees them.

Fixed twin: unregistered_module_fixed.py (nn.ModuleList).

Finds: unregistered-module @ (the model) at the bug
"""
import torch
from torch import nn


class ListMLP(nn.Module):
    def __init__(self, width: int = 64, depth: int = 3, classes: int = 10):
        super().__init__()
        self.inp = nn.Linear(32, width)
        self.hidden = [nn.Linear(width, width) for _ in range(depth)]   # the bug: a plain list
        self.out = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.inp(x))
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)
