"""A DeepONet keeps its output bias as a plain tensor with requires_grad=True, so it is never trained.

The operator-learning library's DeepONet combines a branch net (the input function, sampled at fixed
sensors) and a trunk net (the query locations) by a dot product, then adds a scalar bias `self.b`. The bias
was created as `torch.tensor(0.0, requires_grad=True)`: backward fills its .grad, but it is not an
nn.Parameter, so model.parameters() does not list it, the optimizer never moves it off 0, and it is not
saved in state_dict(). The merged fix ("untrainable bias") wraps it in a Parameter, in DeepONet and MIONet.

Here: learn the antiderivative operator, u(x) -> integral of u from 0 to x, on random sine mixtures.

Source: https://github.com/lululxvi/deepxde/pull/1023
Finds: unregistered-parameter @ (the model)
"""
import math

import torch
from torch import nn

SENSORS, POINTS, WIDTH = 40, 30, 48


class FNN(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for linear in self.linears:
            nn.init.xavier_normal_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x):
        for linear in self.linears[:-1]:
            x = torch.tanh(linear(x))
        return self.linears[-1](x)


class DeepONetCartesianProd(nn.Module):
    def __init__(self, branch_sizes=(SENSORS, WIDTH, WIDTH), trunk_sizes=(1, WIDTH, WIDTH)):
        super().__init__()
        self.branch = FNN(branch_sizes)
        self.trunk = FNN(trunk_sizes)
        self.b = torch.tensor(0.0, requires_grad=True)            # the bug: not an nn.Parameter

    def forward(self, x_func, x_loc):
        coeffs = self.branch(x_func)                              # (functions, WIDTH)
        basis = torch.tanh(self.trunk(x_loc))                     # (points, WIDTH)
        out = torch.einsum("bi,ni->bn", coeffs, basis)
        return out + self.b


SENSOR_X = torch.linspace(0, 1, SENSORS)
QUERY_X = torch.linspace(0, 1, POINTS).unsqueeze(1)


def make_batch(batch_size: int):
    amp = torch.randn(batch_size, 3)
    freq = torch.tensor([1.0, 2.0, 3.0]) * math.pi
    u = (amp[:, :, None] * torch.sin(freq[None, :, None] * SENSOR_X)).sum(1)
    # antiderivative of sin(w x) from 0: (1 - cos(w x)) / w, plus a constant offset the bias should learn
    x = QUERY_X.squeeze(1)
    s = (amp[:, :, None] * (1 - torch.cos(freq[None, :, None] * x)) / freq[None, :, None]).sum(1) + 0.5
    return (u, QUERY_X), s


def loss_fn(pred, target):
    return nn.functional.mse_loss(pred, target)
