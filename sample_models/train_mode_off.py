"""Bug: validation inside the training loop calls model.eval() and never model.train().

From the second step on, the model trains in eval mode: Dropout drops nothing and BatchNorm normalises
with frozen running statistics that it no longer updates.
Fixed twin: train_mode_off_fixed.py (model.train() after validation).

Finds: train-mode-off @ net.1 at the bug
"""
import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.3),
                                 nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))


def validate(model, batch) -> float:
    x, y = batch
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean()     # the bug: model.train() never follows
    return accuracy.item()


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    validate(model, batch)
    return loss
