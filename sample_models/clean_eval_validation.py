"""Clean reference: BatchNorm and Dropout with a validation pass that switches to model.eval() under
torch.no_grad() and back to train mode afterwards.

Finds: nothing
"""
import torch
from torch import nn


class ConvClassifier(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Dropout(0.2))
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_batch(batch_size: int):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))


def eval_step(model, batch):
    x, y = batch
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
    model.train()
    return accuracy
