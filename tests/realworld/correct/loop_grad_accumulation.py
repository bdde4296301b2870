"""Gradient accumulation: 4 micro-batches each backpropagate loss / 4, then one optimizer step and zero_grad.

Source: the accumulation pattern of Hugging Face accelerate's docs (usage_guides/gradient_accumulation) and
transformers' Trainer (gradient_accumulation_steps): divide the loss, step every N micro-batches.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

ACCUM, STEPS, MICRO = 4, 25, 8


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.GELU(), nn.LayerNorm(64), nn.Linear(64, 64), nn.GELU(),
                          nn.Linear(64, 5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    centres = torch.randn(5, 20) * 2
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        optimizer.zero_grad()
        for micro in range(ACCUM * STEPS):
            y = torch.randint(0, 5, (MICRO,))
            x = centres[y] + torch.randn(MICRO, 20)
            loss = F.cross_entropy(model(x), y) / ACCUM
            loss.backward()
            if (micro + 1) % ACCUM == 0:
                optimizer.step()
                optimizer.zero_grad()
