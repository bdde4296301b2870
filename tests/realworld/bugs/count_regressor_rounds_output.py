"""A counting network rounds its output to whole numbers inside forward(): every gradient is exactly zero.

The forum question: the output of a network should be rounded before the loss, and the network stops
learning. torch.round has a derivative of zero almost everywhere (the answer: "it'll give you 0"), so a loss
computed on the rounded prediction sends zero gradient to every parameter; nothing is cut, nothing is None,
the optimizer steps and no weight moves. (Fixes: round only at inference, or a straight-through estimator.)

Source: https://discuss.pytorch.org/t/torch-round-gradient/28628/4
Finds: gradient-chain-broken @ (the model)
"""
import torch
from torch import nn


class ObjectCounter(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        count = self.head(self.features(x)).squeeze(1) * 10
        return torch.round(count)                       # the bug: d round / dx = 0, the loss gets no gradient


def make_batch(batch_size: int):
    images = torch.zeros(batch_size, 1, 32, 32)
    counts = torch.randint(0, 9, (batch_size,))
    for i, n in enumerate(counts.tolist()):
        for _ in range(n):
            y, x = torch.randint(0, 30, (2,)).tolist()
            images[i, 0, y:y + 2, x:x + 2] = 1.0            # one bright blob per object
    return images, counts.float()
