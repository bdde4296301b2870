"""Bug: the training step never calls optimizer.zero_grad().

backward() adds into .grad, so each step applies the sum of every gradient so far: the updates follow a
stale, ever-growing sum instead of the current batch, and the loss oscillates.
Fixed twin: gradients_accumulate_fixed.py (zero_grad() before backward()).

Finds: gradients-accumulate @ (the model) at the bug
"""
import torch
from torch import nn
from torch.nn import functional as F


class Classifier(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01)


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    loss.backward()                                     # the bug: no optimizer.zero_grad() before it
    optimizer.step()
    return loss
