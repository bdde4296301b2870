"""Monte-Carlo dropout: after training, model.eval() with only the Dropout modules put back in train mode, T samples.

Source: Gal & Ghahramani, "Dropout as a Bayesian Approximation" (2016), in the usual PyTorch idiom
(model.eval(), then m.train() for every nn.Dropout, under torch.no_grad()) as in e.g. the MC-dropout
recipes of the Bayesian deep learning literature.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


def enable_mc_dropout(model):
    model.eval()                                      # BatchNorm uses its running statistics...
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()                                 # ...while dropout keeps sampling masks: on purpose


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    w = torch.randn(8, 1)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x = torch.randn(32, 8)
            loss = F.mse_loss(model(x), torch.sin(x @ w))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        enable_mc_dropout(model)
        with torch.no_grad():
            xt = torch.randn(64, 8)
            samples = torch.stack([model(xt) for _ in range(20)])
        probe.log(mc_std=float(samples.std(0).mean()))
        model.train()
