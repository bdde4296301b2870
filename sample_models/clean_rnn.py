"""Clean reference: a sequence classifier with a GRU feeding an LSTM.

Finds: nothing
"""
import torch
from torch import nn


class RecurrentClassifier(nn.Module):
    def __init__(self, features: int = 16, hidden: int = 32, classes: int = 4):
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x)
        h, _ = self.lstm(h)
        return self.head(h[:, -1])


def make_batch(batch_size: int):
    return torch.randn(batch_size, 12, 16), torch.randint(0, 4, (batch_size,))
