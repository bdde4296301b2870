"""Mixup: images and one-hot labels mixed with a Beta(0.2, 0.2) weight, cross-entropy on the soft (probability) targets.

Source: pytorch/vision, references/classification/transforms.py (RandomMixup: one-hot the targets, mix both
batch and targets with the rolled batch, lambda ~ Beta(alpha, alpha)) with train.py's
nn.CrossEntropyLoss(label_smoothing=...) taking those probability targets; Zhang et al., "mixup: Beyond
Empirical Risk Minimization" (2018).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

CLASSES, ALPHA = 10, 0.2


def mixup(images, target):
    target = F.one_hot(target, CLASSES).float()
    lam = float(torch.distributions.Beta(ALPHA, ALPHA).sample())
    mixed_images = images.mul(lam).add(images.roll(1, 0), alpha=1 - lam)
    return mixed_images, target.mul(lam).add(target.roll(1, 0), alpha=1 - lam)


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, CLASSES))
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-5)
    prototypes = torch.randn(CLASSES, 3, 1, 1)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(30):
            target = torch.randint(0, CLASSES, (16,))
            images, soft_target = mixup(prototypes[target] + 0.5 * torch.randn(16, 3, 16, 16), target)
            output = model(images)
            loss = criterion(output, soft_target)             # (B, C) logits against (B, C) probabilities
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
