"""Bug: a deep stack of sigmoid layers. Each sigmoid passes back at most a quarter of the gradient, so after
twelve layers the first ones receive gradients a billion times smaller than the output layer's and
barely learn.
Fixed twin: vanishing_gradients_fixed.py (ReLU activations with LayerNorm between the layers).

Finds: vanishing-gradients @ body.0
"""
import torch
from torch import nn


class DeepSigmoidNet(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64, depth: int = 12, classes: int = 10):
        super().__init__()
        layers = [nn.Linear(features, hidden), nn.Sigmoid()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.Sigmoid()]         # the bug: saturating activations
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
