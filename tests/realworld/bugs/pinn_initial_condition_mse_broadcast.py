"""A PINN framework's initial-condition term compares a (B, 1) prediction with a (B,) target under MSELoss.

The physics-informed neural network framework computes the initial-condition loss as
`weight * MSELoss()(model(x), gt_y)`; the network maps points (x, y, t) of shape [batch, 3] to [batch, 1]
while the dataset yields the initial values as a flat [batch] tensor. PyTorch only warns ("Using a target
size ... different to the input size ... broadcasting") and compares every prediction with every target, a
(batch, batch) matrix; the reporter fixed it with `model(x).reshape(-1)`. Under the broadcast the best the
network can do is predict the batch mean of u0 everywhere, so the initial condition is never learned.

Source: https://github.com/Photon-AI-Research/NeuralSolvers/issues/20
Finds: loss-shape-broadcast
"""
import math

import torch
from torch import nn

from probes import Probe


class MLP(nn.Module):
    def __init__(self, width=32, depth=3):
        super().__init__()
        layers, d = [], 3
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.Tanh()]
            d = width
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class InitialCondition:
    def __init__(self, weight=1.0):
        self.norm = nn.MSELoss()
        self.weight = weight

    def __call__(self, x, model, gt_y):
        prediction = model(x)                                # (B, 1)
        return self.weight * self.norm(prediction, gt_y)     # the bug: gt_y is (B,), broadcast to (B, B)


class BoundaryCondition:
    def __init__(self, weight=1.0):
        self.norm = nn.MSELoss()
        self.weight = weight

    def __call__(self, x, model):
        prediction = model(x)
        return self.weight * self.norm(prediction, torch.zeros_like(prediction))


def initial_points(n):
    xy = torch.rand(n, 2) * 2 - 1
    u0 = torch.sin(math.pi * xy[:, 0]) * torch.cos(math.pi * xy[:, 1] / 2)     # flat, one value a point
    return torch.cat([xy, torch.zeros(n, 1)], dim=1), u0


def boundary_points(n):
    xy = torch.rand(n, 2) * 2 - 1
    xy[:, 0] = torch.sign(xy[:, 0])                          # x = -1 or 1
    return torch.cat([xy, torch.rand(n, 1)], dim=1)


def train(run_dir):
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ic, bc = InitialCondition(), BoundaryCondition(weight=0.1)
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(40):
            x0, u0 = initial_points(64)
            loss = ic(x0, model, u0) + bc(boundary_points(32), model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
