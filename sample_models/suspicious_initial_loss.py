"""Bug: the output layer is initialised with unit-variance weights, so the untrained classifier is already
confidently wrong: its first cross-entropy is many times log(10) = 2.3, the loss of uniform predictions,
and the first steps are spent shrinking the logits instead of learning.
Fixed twin: suspicious_initial_loss_fixed.py (the output layer's weights scaled down, bias zero).

suspicious-initial-loss is an info finding (the sample test counts errors and warnings only).
Finds: nothing
"""
import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, features: int = 64, hidden: int = 128, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, classes)
        nn.init.normal_(self.out.weight, std=1.0)          # the bug: logits with a std of ~5 at step 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))
