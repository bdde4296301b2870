"""Bug: plain SGD with a learning rate too high for unnormalised inputs (raw features in the tens).

The gradient of a squared error grows with the input scale: each step overshoots the minimum further than
the last, so the weights swing with growing amplitude and the gradient norm grows about a thousandfold per
step until the ReLUs die. Each step also rewrites the weights entirely (||dW|| ~ ||W||).
Fixed twin: exploding_gradients_fixed.py (inputs and targets standardised).

Finds: exploding-gradients @ net.0, update-ratio @ net.0
"""
import torch
from torch import nn
from torch.nn import functional as F


class PriceModel(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    x = 20 + 10 * torch.randn(batch_size, 8)            # the bug: raw features, never standardised
    return x, x.sum(dim=1, keepdim=True) / 8


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01)


def loss_fn(outputs, targets):
    return F.mse_loss(outputs, targets)
