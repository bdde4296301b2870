"""Image classification with nn.CrossEntropyLoss(label_smoothing=0.1) on raw logits, SGD with momentum.

Source: pytorch/vision, references/classification/train.py (criterion = nn.CrossEntropyLoss(
label_smoothing=args.label_smoothing), used with --label-smoothing 0.1 in the torchvision training recipes).
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe


class SmallResNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                   nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def train(run_dir):
    torch.manual_seed(0)
    model = SmallResNet()
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    prototypes = torch.randn(10, 3, 1, 1)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(30):
            target = torch.randint(0, 10, (16,))
            image = prototypes[target] + 0.5 * torch.randn(16, 3, 16, 16)
            output = model(image)
            loss = criterion(output, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
