"""Bug: the classifier ends in a softmax, and its probabilities go into cross-entropy.

F.cross_entropy (like nn.CrossEntropyLoss) applies log_softmax itself: given probabilities, it squashes them
a second time. Scores confined to [0, 1] make a nearly uniform softmax, so the loss barely moves below
log(10) and the gradients are tiny: accuracy sticks.
Fixed twin: loss_input_mismatch_fixed.py (forward returns the logits; softmax only for predictions).

Finds: loss-input-mismatch at the bug
"""
import torch
from torch import nn
from torch.nn import functional as F


class Classifier(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, classes), nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))


def loss_fn(probabilities, targets):
    return F.cross_entropy(probabilities, targets)       # the bug: probabilities, not logits
