"""OneCycleLR stepped once per batch with SGD: learning rate and momentum cycled inversely over the whole run.

Source: PyTorch, torch.optim.lr_scheduler.OneCycleLR (torch/optim/lr_scheduler.py: max_lr, total_steps,
pct_start 0.3, cycle_momentum between 0.85 and 0.95, cosine annealing), after Smith & Topin,
"Super-Convergence"; a small CIFAR-style CNN with BatchNorm.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

STEPS = 30


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=STEPS, pct_start=0.3)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(STEPS):
            x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            probe.log(lr=scheduler.get_last_lr()[0])
