"""Fixed twin of nonfinite_values.py: the compression is a symmetric log, sign(x) * log1p(|x|), finite everywhere.

Finds: nothing
"""
import torch
from torch import nn


class LogCompress(nn.Module):
    """Squash heavy-tailed features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x) * torch.log1p(x.abs())


class HeavyTailClassifier(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64, classes: int = 4):
        super().__init__()
        self.compress = LogCompress()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.compress(x))


def build_model() -> HeavyTailClassifier:
    return HeavyTailClassifier()


def make_batch(batch_size: int):
    x = torch.randn(batch_size, 32)             # standardised: zero mean, unit variance
    return x, torch.randint(0, 4, (batch_size,))
