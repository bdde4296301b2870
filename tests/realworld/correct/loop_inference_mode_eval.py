"""Validation under model.eval() and torch.inference_mode() every 10 steps, then model.train() again
(BatchNorm + Dropout model).

Source: PyTorch, torch.inference_mode (torch/autograd/grad_mode.py; recommended over no_grad for evaluation in
the "Autograd mechanics" notes), the evaluation pattern of torchvision's classification reference
(references/classification/train.py evaluate(): model.eval(), torch.inference_mode()).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


def evaluate(model, x, y):
    model.eval()
    with torch.inference_mode():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.25),
                          nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    centres = torch.randn(4, 20)
    yv = torch.randint(0, 4, (64,))
    xv = centres[yv] + torch.randn(64, 20)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            y = torch.randint(0, 4, (32,))
            x = centres[y] + torch.randn(32, 20)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (step + 1) % 10 == 0:
                val_loss, val_acc = evaluate(model, xv, yv)
                probe.log(val_loss=val_loss, val_acc=val_acc)
