"""Clean reference: binarised activations trained with a straight-through estimator. The forward rounds,
the backward passes the gradient through unchanged (x + (round(x) - x).detach()), so every layer learns.

Finds: nothing
"""
import torch
from torch import nn


class BinaryCode(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(x)
        return p + (torch.round(p) - p).detach()         # straight-through: round forward, identity backward


class BinaryAutoencoder(nn.Module):
    def __init__(self, features: int = 32, code: int = 16):
        super().__init__()
        self.encoder = nn.Linear(features, code)
        self.binarise = BinaryCode()
        self.decoder = nn.Linear(code, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.binarise(self.encoder(x)))


def build_model() -> BinaryAutoencoder:
    return BinaryAutoencoder()


def make_batch(batch_size: int):
    x = torch.randn(batch_size, 32)
    return x, x
