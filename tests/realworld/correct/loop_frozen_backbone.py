"""Transfer learning: a frozen backbone (requires_grad False, kept in eval mode so BatchNorm stats stay put), new head.

Source: the "ConvNet as fixed feature extractor" part of pytorch/tutorials
beginner_source/transfer_learning_tutorial.py (freeze the backbone, optimise only the new fc layer).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc(self.backbone(x))

    def train(self, mode=True):
        super().train(mode)
        self.backbone.eval()                          # the frozen feature extractor never updates its stats
        return self


def train(run_dir):
    torch.manual_seed(0)
    model = Classifier()
    model.backbone.requires_grad_(False)
    optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 5, (16,))
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
