"""Fixed twin of suspicious_initial_loss.py: a small output layer, so the first loss is close to log(10).

Finds: nothing
"""
import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, features: int = 64, hidden: int = 128, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, classes)
        nn.init.normal_(self.out.weight, std=0.01)         # near-uniform predictions at step 0
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))
