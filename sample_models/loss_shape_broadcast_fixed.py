"""Fixed twin of loss_shape_broadcast.py: the (B, 1) output is squeezed to (B,) before the loss.

Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F


class Regressor(nn.Module):
    def __init__(self, features: int = 13):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    x = torch.randn(batch_size, 13)
    return x, x[:, 0] * 3 - x[:, 1]


def loss_fn(prediction, target):
    return F.mse_loss(prediction.squeeze(-1), target)
