"""A sparse-weights wrapper calls `self.module.forward(x)` on the layer it wraps, so the layer's hooks never run.

SparseWeights wraps a Linear layer and zeroes a fixed fraction of its weights; its forward delegated with
`self.module.forward(x)`. Forward hooks registered on the wrapped layer were ignored (the fix: call
`self.module(x)`).

Source: https://github.com/numenta/nupic.torch/pull/51
Finds: forward-called-directly @ fc1.module
"""
import torch
from torch import nn


class SparseWeights(nn.Module):
    def __init__(self, module: nn.Linear, weight_sparsity: float = 0.5):
        super().__init__()
        self.module = module
        zeros = int(round((1.0 - weight_sparsity) * module.in_features))
        mask = torch.ones_like(module.weight)
        for row in range(module.out_features):
            mask[row, torch.randperm(module.in_features)[:zeros]] = 0
        self.register_buffer("zero_mask", mask)
        self.rezero_weights()

    def rezero_weights(self):
        with torch.no_grad():
            self.module.weight.mul_(self.zero_mask)

    def forward(self, x):
        return self.module.forward(x)                           # the bug: bypasses the wrapped layer's hooks


class KWinners(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        threshold = x.topk(self.k, dim=1).values[:, -1:]
        return x * (x >= threshold)


class SparseMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = SparseWeights(nn.Linear(784, 256), weight_sparsity=0.3)
        self.kwinners = KWinners(k=32)
        self.out = nn.Linear(256, 10)

    def forward(self, x):
        return self.out(self.kwinners(self.fc1(x.flatten(1))))


def build_model() -> SparseMLP:
    return SparseMLP()


def make_batch(batch_size: int):
    return torch.rand(batch_size, 784), torch.randint(0, 10, (batch_size,))
