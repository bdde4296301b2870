"""Bug: a dataset that reads each sample from slow storage, loaded with num_workers=0.

With no worker processes the training loop itself fetches every sample, one after another: the model
waits for each batch far longer than it takes to train on it.
Fixed twin: dataloader_stall_fixed.py (num_workers=8: workers fetch the next batches while the model trains).

Finds: dataloader-stall at the bug
"""
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class SlowStorage(Dataset):
    """Stands in for files on network storage: every read costs ten milliseconds."""

    def __len__(self) -> int:
        return 256

    def __getitem__(self, i: int):
        time.sleep(0.010)                                   # the read
        g = torch.Generator().manual_seed(i)
        return torch.randn(64, generator=g), i % 10


class Classifier(nn.Module):
    def __init__(self, features: int = 64, hidden: int = 1024, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_loader() -> DataLoader:
    return DataLoader(SlowStorage(), batch_size=8, shuffle=True, num_workers=0)     # the bug: no workers
