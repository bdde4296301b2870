"""Validation every 10 steps under model.eval() and torch.no_grad(), then model.train() again (BatchNorm + Dropout).

Source: the train/evaluate loop of pytorch/examples imagenet/main.py (validate(): model.eval(), torch.no_grad(),
then model.train() when training resumes).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


def validate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
    model.train()
    return float(loss), float(acc)


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xv, yv = torch.randn(64, 1, 16, 16), torch.randint(0, 4, (64,))
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x, y = torch.randn(16, 1, 16, 16), torch.randint(0, 4, (16,))
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (step + 1) % 10 == 0:
                val_loss, val_acc = validate(model, xv, yv)
                probe.log(val_loss=val_loss, val_acc=val_acc)
