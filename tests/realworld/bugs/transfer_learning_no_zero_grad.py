"""A transfer-learning notebook's training loop never calls optimizer.zero_grad(): gradients pile up.

The cats-vs-dogs exercise freezes a pretrained feature extractor, replaces the classifier and trains it with
Adam, but the loop goes straight from `loss.backward()` to `optimizer.step()` with no `zero_grad()`.
PyTorch accumulates into `.grad`, so every step's gradient is the sum of all the previous ones: the
gradient norm climbs step after step and each update follows the stale, ever-growing sum instead of the
current batch (the PR: "We are missing zero_grad in example, which can cause gradients to accumulate").

Source: https://github.com/udacity/deep-learning-v2-pytorch/pull/160
Finds: gradients-accumulate @ (the model)
"""
from collections import OrderedDict

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class DenseNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(128, 1000)

    def forward(self, x):
        return self.classifier(self.features(x))


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    model = DenseNetLike()                                  # stands in for models.densenet121(pretrained=True)
    for param in model.features.parameters():
        param.requires_grad = False                         # freeze the feature extractor
    model.classifier = nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(128, 64)), ("relu", nn.ReLU()), ("drop", nn.Dropout(0.2)),
        ("fc2", nn.Linear(64, 2)), ("output", nn.LogSoftmax(dim=1))]))
    criterion = nn.NLLLoss()
    optimizer = torch.optim.Adam(model.classifier.parameters(), lr=0.003)

    images = torch.rand(240, 3, 64, 64)
    labels = (images[:, 0].mean((1, 2)) > images[:, 2].mean((1, 2))).long()      # "cat" vs "dog"
    trainloader = DataLoader(TensorDataset(images, labels), batch_size=8, shuffle=True)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        model.train()
        for inputs, labels in probe.wrap(trainloader):
            logps = model(inputs)
            loss = criterion(logps, labels)
            loss.backward()                                 # the bug: no optimizer.zero_grad() before this
            optimizer.step()
