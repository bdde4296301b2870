"""Bug: forward clips features with NumPy, which cuts the autograd graph: the encoder never trains.

`h.detach().numpy()` (NumPy cannot hold a graph) turns everything after it into a constant for autograd:
the encoder's weights end every backward pass with no gradient, and the optimizer leaves them alone.

Fixed twin: gradient_chain_broken_fixed.py (torch.clamp keeps the graph).

Finds: gradient-chain-broken @ (the model) at the bug, param-unreached @ encoder
"""
import numpy as np
import torch
from torch import nn


class ClippedMLP(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        h = torch.from_numpy(np.clip(h.detach().numpy(), 0.0, 6.0))     # the bug: a NumPy round trip
        return self.head(h)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))
