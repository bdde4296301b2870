"""Gradient accumulation over 4 micro-batches with zero_grad() at the start of each group: `if i % N == 0`.

Source: the accumulation loop discussed on the PyTorch forum (https://discuss.pytorch.org/t/how-gradients-are-accumulated-in-real/115462):
divide each micro-batch loss by N, call backward() every micro-batch and step every N; written here with the
gradients cleared when a group of N micro-batches begins rather than after its step.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

ACCUM, STEPS, MICRO = 4, 25, 8


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(), nn.Linear(48, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    w_true = torch.randn(12, 3)
    with Probe(model, optimizer, run_dir=run_dir):
        for i in range(ACCUM * STEPS):
            if i % ACCUM == 0:
                optimizer.zero_grad()
            x = torch.randn(MICRO, 12)
            y = (x @ w_true).argmax(1)
            loss = F.cross_entropy(model(x), y) / ACCUM
            loss.backward()
            if (i + 1) % ACCUM == 0:
                optimizer.step()
