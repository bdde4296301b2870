"""A gene-expression autoencoder with sigmoid activations at every layer gets stuck and barely learns.

The multi-task TCGA project trained a deep autoencoder on expression profiles with sigmoid activations;
the authors recorded that "Leaky Relu converges faster than Sigmoid and Tanh and doesn't get stuck at 0".
Each sigmoid passes back at most a quarter of the gradient, so the first encoder layers learn far slower
than the last decoder layers.

Source: https://github.com/MollyZhang/Multi-task-TCGA-learning/issues/15
Finds: vanishing-gradients @ encoder.0
Known miss: trained with Adam, every layer's weights move at a normal rate, and vanishing-gradients is confirmed by the update ratio by design
"""
import torch
from torch import nn

GENES = 1000


class ExpressionAutoencoder(nn.Module):
    def __init__(self, sizes=(GENES, 512, 256, 64)):
        super().__init__()
        enc, dec = [], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            enc += [nn.Linear(a, b), nn.Sigmoid()]                  # the bug: saturating activations
        rev = sizes[::-1]
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.Linear(a, b), nn.Sigmoid()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def make_batch(batch_size: int):
    expression = torch.rand(batch_size, GENES)                  # min-max scaled log expression
    return expression, expression
