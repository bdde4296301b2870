"""Fixed twin of unregistered_parameter.py: the scale is an nn.Parameter, the biases an nn.ParameterList.

Finds: nothing
"""
import torch
from torch import nn


class ScaledHeads(nn.Module):
    def __init__(self, features: int = 32, heads: int = 2, classes: int = 10):
        super().__init__()
        self.body = nn.Linear(features, 64)
        self.scale = nn.Parameter(torch.ones(64))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(classes)) for _ in range(heads))
        self.heads = nn.ModuleList(nn.Linear(64, classes) for _ in range(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x)) * self.scale
        return sum(head(h) + b for head, b in zip(self.heads, self.biases))
