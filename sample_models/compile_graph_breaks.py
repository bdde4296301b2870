"""Opt-in (`--compile-check`): forward turns a tensor into a Python number, so torch.compile breaks the graph.

`h.abs().max().item()` copies a value out of the tensor into Python to decide an `if`: torch.compile cannot
trace that, so it splits forward into two graphs and runs the line in between in Python, every call. The
model trains correctly, so the plain check finds nothing; `check --compile-check` reports the line as an info
finding `compile-graph-breaks`.

Fixed twin: compile_graph_breaks_fixed.py (the same scaling, kept a tensor).

Finds: nothing
"""
import torch
from torch import nn


class ScaledMLP(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        scale = h.abs().max().item()        # the graph break: a Python float out of a tensor
        if scale > 1.0:
            h = h / scale
        return self.head(h)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))
