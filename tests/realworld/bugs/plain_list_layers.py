"""Hidden layers kept in a Python list: the optimizer never sees them.

Source: PyTorch forums, "Model parameters are not being updated" — layers appended to self.layers = [].
Finds: unregistered-module @ (the model)
"""
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(10, 32)
        self.layers = [nn.Linear(32, 32) for _ in range(3)]
        self.out = nn.Linear(32, 2)

    def forward(self, x):
        x = torch.relu(self.inp(x))
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.out(x)
