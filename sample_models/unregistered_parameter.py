"""Bug: a learnable scale kept as a plain tensor with requires_grad, and per-head biases in a plain list.

Gradients reach them, but model.parameters() does not list them: the optimizer never updates them,
.to(device) leaves them behind and state_dict() does not save them.
Fixed twin: unregistered_parameter_fixed.py (nn.Parameter, nn.ParameterList).

Finds: unregistered-parameter @ (the model) at the bug, unregistered-parameter @ (the model) at the bug
"""
import torch
from torch import nn


class ScaledHeads(nn.Module):
    def __init__(self, features: int = 32, heads: int = 2, classes: int = 10):
        super().__init__()
        self.body = nn.Linear(features, 64)
        self.scale = torch.ones(64, requires_grad=True)                      # the bug: not nn.Parameter
        self.biases = [nn.Parameter(torch.zeros(classes)) for _ in range(heads)]   # the bug: a plain list
        self.heads = nn.ModuleList(nn.Linear(64, classes) for _ in range(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x)) * self.scale
        return sum(head(h) + b for head, b in zip(self.heads, self.biases))
