"""Bug: a linear warm-up written with integer division, so the learning rate is 0 for the whole warm-up.

LambdaLR multiplies the base lr by `step // WARMUP`, which is 0 until step WARMUP: the optimizer steps,
the gradients are there, and not one weight moves (Adam and SGD both scale the update by the lr).
Fixed twin: weights_not_updating_fixed.py (`(step + 1) / WARMUP`).

Finds: weights-not-updating @ net
"""
import torch
from torch import nn
from torch.nn import functional as F

WARMUP = 100
scheduler = None


class Regressor(nn.Module):
    def __init__(self, features: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    x = torch.randn(batch_size, 16)
    return x, x[:, :1] * 2 - x[:, 1:2]


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    global scheduler
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, step // WARMUP))          # the bug: integer division
    return optimizer


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = F.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss
