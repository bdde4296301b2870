"""Early stopping: validate every 4 steps, keep the best weights as a state_dict saved into an io.BytesIO, stop
after 3 validations without improvement, then load the best checkpoint back.

Source: the EarlyStopping helper of Bjarten/early-stopping-pytorch (early_stopping_pytorch/early_stopping.py,
formerly pytorchtools.py: patience, delta, save_checkpoint on improvement), with torch.save and
torch.load(weights_only=True) of model.state_dict() as the "Saving and Loading Models" tutorial shows
(pytorch/tutorials beginner_source/saving_loading_models.py), into memory instead of a file.
Finds: nothing
"""
import io

import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class EarlyStopping:
    def __init__(self, patience=3, delta=0.0):
        self.patience, self.delta = patience, delta
        self.best, self.bad, self.checkpoint = float("inf"), 0, None

    def __call__(self, val_loss, model):
        if val_loss < self.best - self.delta:
            self.best, self.bad = val_loss, 0
            buf = io.BytesIO()
            torch.save(model.state_dict(), buf)
            self.checkpoint = buf.getvalue()
        else:
            self.bad += 1
        return self.bad >= self.patience


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Dropout(0.1), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, xv = torch.randn(64, 8), torch.randn(64, 8)
    w = torch.randn(8, 1)
    yt, yv = xt @ w + 0.3 * torch.randn(64, 1), xv @ w + 0.3 * torch.randn(64, 1)   # small set: it overfits
    stopper = EarlyStopping(patience=3)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(60):
            idx = torch.randint(0, 64, (16,))
            loss = F.mse_loss(model(xt[idx]), yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (step + 1) % 4 == 0:
                model.eval()
                with torch.no_grad():
                    val_loss = F.mse_loss(model(xv), yv).item()
                model.train()
                probe.log(val_loss=val_loss)
                if stopper(val_loss, model):
                    break
    state = torch.load(io.BytesIO(stopper.checkpoint), weights_only=True)
    model.load_state_dict(state)
    model.eval()
