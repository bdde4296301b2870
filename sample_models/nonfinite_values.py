"""Bug: a log-compression layer applied to standardised features, which are negative about half the time.

torch.log of a negative number is NaN: the NaN leaves the `compress` module at the first step, then the
loss, the gradients and (through the optimizer) every weight become NaN.
Fixed twin: nonfinite_values_fixed.py (a symmetric log, sign(x) * log1p(|x|), defined everywhere).

Finds: nonfinite-values @ compress
"""
import torch
from torch import nn


class LogCompress(nn.Module):
    """Squash heavy-tailed features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)                     # the bug: NaN for x < 0, -inf for x == 0


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
