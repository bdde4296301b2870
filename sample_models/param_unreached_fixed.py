"""Fixed twin of param_unreached.py: the auxiliary head's output is part of the loss.

Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F


class TwoHeads(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)
        self.aux_head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor):
        h = self.body(x)
        return self.head(h), self.aux_head(h)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))


def loss_fn(outputs, targets):
    main, aux = outputs
    return F.cross_entropy(main, targets) + 0.3 * F.cross_entropy(aux, targets)
