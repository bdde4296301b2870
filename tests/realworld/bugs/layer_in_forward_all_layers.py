"""Every layer of a three-layer net is constructed inside forward(): the model owns no parameters at all.

The reporter moved the nn.Linear constructors from __init__ into forward() and found that
list(model.parameters()) is empty. Building the optimizer then fails with "optimizer got an empty parameter
list"; and even with an optimizer, each call would run on freshly drawn random weights that nothing trains.

Source: https://github.com/pytorch/pytorch/issues/1291
Finds: layer-created-in-forward @ (the model)
"""
import torch
from torch import nn

D_IN, HIDDEN, D_OUT = 100, 64, 10


class ThreeLayerNet(nn.Module):
    def __init__(self, d_in: int = D_IN, hidden: int = HIDDEN, d_out: int = D_OUT):
        super().__init__()
        self.d_in, self.hidden, self.d_out = d_in, hidden, d_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.Linear(self.d_in, self.hidden)(x).clamp(min=0)       # the bug: new layers on every call
        h = nn.Linear(self.hidden, self.hidden)(h).clamp(min=0)
        return nn.Linear(self.hidden, self.d_out)(h)


def make_batch(batch_size: int):
    return torch.randn(batch_size, D_IN), torch.randn(batch_size, D_OUT)
