"""Fixed twin of memory_growth.py: the monitoring forward runs under torch.no_grad() and keeps plain
numbers, so nothing from it outlives the step.

Finds: nothing
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
    with torch.no_grad():
        monitored.append(model(monitor_batch).argmax(dim=1).tolist())
    return loss
