"""Bug: a regressor's (B, 1) output against a (B,) target in the MSE loss.

The shapes differ, so PyTorch broadcasts them to (B, B): every prediction is compared with every target
of the batch, and the model learns to output the batch mean. PyTorch only warns about it.
Fixed twin: loss_shape_broadcast_fixed.py (the output is squeezed to (B,)).

Finds: loss-shape-broadcast at the bug
"""
import torch
from torch import nn
from torch.nn import functional as F


class Regressor(nn.Module):
    def __init__(self, features: int = 13):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)                              # (B, 1)


def make_batch(batch_size: int):
    x = torch.randn(batch_size, 13)
    return x, x[:, 0] * 3 - x[:, 1]                     # (B,)


def loss_fn(prediction, target):
    return F.mse_loss(prediction, target)               # the bug: (B, 1) against (B,)
