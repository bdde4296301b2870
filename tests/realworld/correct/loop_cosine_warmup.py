"""Cosine learning-rate schedule with linear warm-up via LambdaLR: the first step runs at lr 0, then ramps up.

Source: Hugging Face transformers, get_cosine_schedule_with_warmup (optimization.py), rewritten as a
LambdaLR multiplier: step / warmup during warm-up, then 0.5 * (1 + cos(pi * progress)).
Finds: nothing
"""
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import LambdaLR

from probes import Probe

WARMUP, TOTAL = 5, 30


def lr_lambda(step):
    if step < WARMUP:
        return step / WARMUP                          # 0 at step 0: the first update is a no-op by design
    progress = (step - WARMUP) / max(1, TOTAL - WARMUP)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    scheduler = LambdaLR(optimizer, lr_lambda)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(TOTAL):
            x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            probe.log(lr=scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
