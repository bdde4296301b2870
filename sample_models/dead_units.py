"""Bug: the hidden layer's bias is initialised far below zero, so most ReLU units never switch on.

A "sparse activations" init (bias ~ N(-3, 1)) leaves nearly every pre-activation negative: those ReLU
units output zero for every input, pass back no gradient, and stay dead for the rest of training.

Fixed twin: dead_units_fixed.py (PyTorch's default init).

Finds: dead-units @ act
"""
import torch
from torch import nn


class SparseMLP(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.hidden = nn.Linear(32, 64)
        self.act = nn.ReLU()
        self.out = nn.Linear(64, classes)
        nn.init.normal_(self.hidden.bias, mean=-3.0, std=1.0)    # the bug: most units start (and stay) off

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(x)))


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))
