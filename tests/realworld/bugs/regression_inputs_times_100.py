"""Linear regression by gradient descent works for x in [0, 1] and blows up to NaN when x is scaled by 100.

The asker's y = m*x + c fit converges with x = rand(...), but with x = rand(...) * 100 the gradients of
the weight and bias explode and become NaN after a couple of iterations. The answer: gradient descent does
not converge unless the learning rate is small enough for the data's scale; rescaling the data rescales
the effective learning rate.

Source: https://mejorcodigo.com/p/45698.html
Finds: exploding-gradients @ linear
"""
import torch
from torch import nn


class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x):
        return self.linear(x)


def make_batch(batch_size: int):
    x = torch.rand(batch_size, 1) * 100                         # the bug: inputs in the hundreds, lr=0.01
    return x, 5 * x + 3 + 0.1 * torch.randn(batch_size, 1)


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.01)
