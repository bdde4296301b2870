"""Bug: __init__ assigns a layer before calling super().__init__().

PyTorch refuses with "cannot assign module before Module.__init__() call" — the check names the class
and the line instead. Fixed twin: missing_super_init_fixed.py.

Finds: missing-super-init @ (the model) at the bug
"""
import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, features: int = 32, classes: int = 10):     # the bug: super().__init__() is not first
        self.fc = nn.Linear(features, classes)     # fails: nn.Module.__init__ has not run yet
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)
