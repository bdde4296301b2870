"""PGD adversarial training: model.eval() while the attack climbs the input gradient, model.train() for the update.

Source: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (2018): train on L-inf
PGD examples (eps 8/255, step 2/255, random start); the mode switching follows yaodongyu/TRADES, trades.py
(model.eval() while crafting x_adv with torch.autograd.grad, then model.train() before the loss the
optimizer steps on). The model has BatchNorm and Dropout.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

EPS, STEP, ITERS = 8 / 255, 2 / 255, 5


def pgd(model, x, y):
    x_adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1).detach()
    for _ in range(ITERS):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        grad, = torch.autograd.grad(loss, [x_adv])
        x_adv = x_adv.detach() + STEP * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - EPS), x + EPS).clamp(0, 1)
    return x_adv.detach()


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    prototypes = torch.rand(10, 3, 1, 1)
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(20):
            y = torch.randint(0, 10, (16,))
            x = (prototypes[y] + 0.2 * torch.randn(16, 3, 16, 16)).clamp(0, 1)
            model.eval()
            x_adv = pgd(model, x, y)
            model.train()
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x_adv), y)
            loss.backward()
            optimizer.step()
