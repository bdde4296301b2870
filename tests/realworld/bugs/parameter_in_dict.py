"""Learnable weights kept in a plain dict attribute are not registered: named_parameters() skips them.

The reporter stored `self.d['d'] = nn.Parameter(...)` in a plain dict next to a directly assigned
parameter; only the direct one shows up in named_parameters(), so the optimizer never updates the other.

Source: https://github.com/pytorch/pytorch/issues/10817
Finds: unregistered-parameter @ (the model)
"""
import torch
from torch import nn

FEATURES, CLASSES = 16, 3


class BilinearScorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.d = dict()
        self.d["d"] = nn.Parameter(torch.randn(FEATURES, FEATURES) * 0.1)      # the bug: in a plain dict
        self.p = nn.Parameter(torch.randn(FEATURES, CLASSES) * 0.1)

    def forward(self, x):
        return (x @ self.d["d"]).tanh() @ self.p


def make_batch(batch_size: int):
    return torch.randn(batch_size, FEATURES), torch.randint(0, CLASSES, (batch_size,))
