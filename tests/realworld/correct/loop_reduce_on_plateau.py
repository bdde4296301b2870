"""ReduceLROnPlateau driven by a validation loss computed every 5 steps in eval mode; the lr drops when it
stalls.

Source: PyTorch, torch.optim.lr_scheduler.ReduceLROnPlateau (torch/optim/lr_scheduler.py: mode "min",
factor 0.5, patience, scheduler.step(val_loss) after each validation), the usage in its docstring.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)
    w = torch.randn(12, 1)
    xv = torch.randn(128, 12)
    yv = torch.sin(xv @ w)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(40):
            x = torch.randn(32, 12)
            loss = F.mse_loss(model(x), torch.sin(x @ w))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (step + 1) % 5 == 0:
                model.eval()
                with torch.no_grad():
                    val_loss = F.mse_loss(model(xv), yv).item()
                model.train()
                scheduler.step(val_loss)
                probe.log(val_loss=val_loss, lr=optimizer.param_groups[0]["lr"])
