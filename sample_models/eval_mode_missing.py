"""Bug: validation runs under torch.no_grad() but without model.eval().

no_grad() only turns off gradients: Dropout still drops units (noisy predictions) and BatchNorm still
normalises with the batch's statistics and overwrites its running statistics with validation data.

Fixed twin: eval_mode_missing_fixed.py (model.eval() before, model.train() after).

Finds: eval-mode-missing @ net.1 at the bug
"""
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.3),
                                 nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))


def eval_step(model, batch):
    inputs, targets = batch
    with torch.no_grad():
        accuracy = (model(inputs).argmax(1) == targets).float().mean()     # the bug: model.eval() is missing
    return accuracy.item()
