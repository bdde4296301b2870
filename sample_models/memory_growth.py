"""Bug: predictions on a fixed monitoring batch are collected every step without torch.no_grad().

That extra forward builds an autograd graph that is never backpropagated, and keeping its output in a list
keeps the graph alive with every activation it saved: memory grows by one forward's activations per step
until the run runs out of memory.
Fixed twin: memory_growth_fixed.py (the monitoring forward under torch.no_grad(), kept as plain numbers).

Finds: memory-growth
"""
import torch
from torch import nn
from torch.nn import functional as F

monitor_batch = torch.randn(8, 3, 128, 128)           # a few full-resolution images
monitored = []


class ImageNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_batch(batch_size: int):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    monitored.append(model(monitor_batch))      # the bug: a graph (and its activations) kept every step
    return loss
