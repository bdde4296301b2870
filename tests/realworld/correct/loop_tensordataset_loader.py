"""A DataLoader over an in-memory TensorDataset (shuffle, drop_last), two epochs, wrapped by the Probe.

Source: PyTorch, torch.utils.data.TensorDataset and DataLoader (torch/utils/data/dataset.py, dataloader.py),
the loop of the "Training with PyTorch" tutorial (pytorch/tutorials beginner_source/introyt/trainingyt.py).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


def train(run_dir):
    torch.manual_seed(0)
    x = torch.randn(320, 10)
    y = (x[:, :3].sum(1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, drop_last=True)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(2):
            running = 0.0
            for xb, yb in probe.wrap(loader):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                optimizer.step()
                running += loss.item()
            probe.log(epoch_loss=running / len(loader))
