"""Bug: an auxiliary head is defined in __init__, and forward never uses it.

The optimizer is built over model.parameters(), so it holds the head's weights, but no loss ever reaches
them: they never get a gradient and never change (and a DistributedDataParallel run would fail on them).
Fixed twin: param_unreached_fixed.py (the auxiliary head's loss is added to the main one).

Finds: param-unreached @ aux_head at the bug
"""
import torch
from torch import nn


class TwoHeads(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)
        self.aux_head = nn.Linear(64, classes)          # the bug: defined, never used in forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))
