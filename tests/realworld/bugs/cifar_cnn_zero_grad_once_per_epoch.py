"""A CIFAR-10 CNN lab calls optimizer.zero_grad() once per epoch, before the batch loop, not once per batch.

The deep-learning course's CIFAR-10 lab builds a VGG-style CNN from a configuration list (conv, optional
BatchNorm, activation, max-pool) and trains it with a `train(net, partition, optimizer, criterion, args)`
function that calls `net.train()` and `optimizer.zero_grad()` at the top and then runs the whole epoch's
batches: backward, step, backward, step... The student asked why zero_grad() runs only once per epoch; the
author agreed it was a mistake and fixed the same error in several labs. Every step after the first uses
the running sum of the epoch's gradients.

Source: https://github.com/heartcored98/Standalone-DeepLearning/issues/11
Finds: gradients-accumulate
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe

CFG = [16, "M", 32, "M", 64, "M"]


class CNN(nn.Module):
    def __init__(self, in_channels=3, out_dim=10, use_bn=True):
        super().__init__()
        self.act = nn.ReLU()
        self.layers = self._make_layers(in_channels, use_bn)
        self.classifer = nn.Sequential(nn.Linear(64 * 2 * 2, 64), self.act, nn.Linear(64, out_dim))

    def _make_layers(self, in_channels, use_bn):
        layers = []
        for x in CFG:
            if x == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(in_channels, x, kernel_size=3, padding=1))
                if use_bn:
                    layers.append(nn.BatchNorm2d(x))
                layers.append(self.act)
                in_channels = x
        return nn.Sequential(*layers)

    def forward(self, x):
        return self.classifer(self.layers(x).flatten(1))


def train_epoch(net, loader, optimizer, criterion):
    net.train()
    optimizer.zero_grad()                                    # the bug: once per epoch, outside the batch loop
    for inputs, labels in loader:
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()


def train(run_dir):
    torch.manual_seed(0)
    images = torch.randn(256, 3, 16, 16)
    labels = (images[:, 0].mean((1, 2)) * 10).clamp(-4.9, 4.9).add(5).long()
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True)
    net = CNN()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    with Probe(net, optimizer, run_dir=run_dir) as probe:
        for epoch in range(2):
            train_epoch(net, probe.wrap(loader), optimizer, criterion)
