"""Bug: the training step calls model.forward(x) instead of model(x), so every module hook is skipped.

Hooks are how profilers, pruning, quantisation, FSDP and debuggers see a model; .forward() bypasses them.

Fixed twin: forward_called_directly_fixed.py (model(x)).

Finds: forward-called-directly @ (the model) at the bug
"""
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))


def train_step(model, batch, optimizer, loss_fn):
    inputs, targets = batch
    loss = loss_fn(model.forward(inputs), targets)      # the bug: should be model(inputs)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
