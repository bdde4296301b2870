"""Binary classification with an explicit nn.Sigmoid output layer and nn.BCELoss on the probabilities.

Source: PyTorch, torch.nn.BCELoss (its documented usage: loss(nn.Sigmoid()(input), target), probabilities
against 0/1 targets), in a small tabular classifier trained with Adam.
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe


class BinaryClassifier(nn.Module):
    def __init__(self, features=10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                 nn.Linear(32, 1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x).squeeze(1)


def train(run_dir):
    torch.manual_seed(0)
    model = BinaryClassifier()
    criterion = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    w = torch.randn(10)
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(40):
            x = torch.randn(32, 10)
            y = ((x @ w) > 0).float()
            prob = model(x)
            loss = criterion(prob, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
