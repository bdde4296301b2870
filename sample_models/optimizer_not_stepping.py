"""Bug: optimizer.zero_grad() sits between loss.backward() and optimizer.step().

The gradients backward() computed are cleared again before step() can apply them: every step has nothing
to apply, and no weight ever changes.
Fixed twin: optimizer_not_stepping_fixed.py (zero_grad() before backward()).

Finds: optimizer-not-stepping @ (the model)
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


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.zero_grad()                               # the bug: clears what step() is about to apply
    optimizer.step()
    return loss
