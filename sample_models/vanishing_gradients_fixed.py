"""Fixed twin of vanishing_gradients.py: the same depth with ReLU and LayerNorm, so gradients keep their scale
from the output back to the first layer.

Finds: nothing
"""
import torch
from torch import nn


class DeepReluNet(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64, depth: int = 12, classes: int = 10):
        super().__init__()
        layers = [nn.Linear(features, hidden), nn.LayerNorm(hidden), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
