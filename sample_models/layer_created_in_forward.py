"""Bug: the classifier layer is built inside forward(), so it has fresh random weights on every call.

`nn.Linear(64, classes)(h)` makes a new layer each forward: the optimizer (built once, before) never sees
its weights, and whatever it would learn is thrown away on the next call.

Fixed twin: layer_created_in_forward_fixed.py (the layer is built once in __init__).

Finds: layer-created-in-forward @ (the model) at the bug
"""
import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.classes = classes
        self.encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        return nn.Linear(64, self.classes)(h)          # the bug: a new layer on every call


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))
