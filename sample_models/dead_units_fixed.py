"""Fixed twin of dead_units.py: PyTorch's default init, so the ReLU units are active on about half the inputs.

Finds: nothing
"""
import torch
from torch import nn


class SparseMLP(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.hidden = nn.Linear(32, 64)
        self.act = nn.ReLU()
        self.out = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(x)))


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))
