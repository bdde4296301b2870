"""Stochastic weight averaging: AveragedModel collects the weights after an SWALR phase, then update_bn.

Source: PyTorch, torch.optim.swa_utils (AveragedModel, SWALR, update_bn; torch/optim/swa_utils.py), following
the example in its docs (SWA from swa_start, BatchNorm statistics recomputed on the training loader).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe

SWA_START = 20


def train(run_dir):
    torch.manual_seed(0)
    y = torch.randint(0, 3, (512,))
    x = torch.randn(512, 12) + F.one_hot(y, 12).float() * 3
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(12, 48), nn.BatchNorm1d(48), nn.ReLU(), nn.Linear(48, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    swa_model = AveragedModel(model)
    swa_scheduler = SWALR(optimizer, swa_lr=0.02, anneal_epochs=1)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        step = 0
        for epoch in range(2):
            for xb, yb in probe.wrap(loader):
                loss = F.cross_entropy(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step >= SWA_START:
                    swa_model.update_parameters(model)
                    swa_scheduler.step()
                step += 1
        update_bn(loader, swa_model)                       # BatchNorm statistics for the averaged weights
        swa_model.eval()
        with torch.no_grad():
            acc = (swa_model(x).argmax(1) == y).float().mean()
        probe.log(swa_acc=float(acc))
