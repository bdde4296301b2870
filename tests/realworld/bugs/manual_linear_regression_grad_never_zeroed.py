"""A linear-regression demo updates its weights by hand and never zeroes their gradients.

The learning repository's autograd demo fits y = w * x + b with tensors created with requires_grad=True:
each epoch runs `loss.backward()` and then `w.data -= lr * w.grad.data` (and the same for b), with no
`w.grad.data.zero_()`. A reader on PyTorch 1.0.1 found the loss "not always decreasing, even with lr 1e-6"
and pointed at the missing zeroing; the author fixed it. Here the two tensors are the parameters of a
one-unit nn.Linear and the steps are marked with probe.step(), as a hand-written update needs.

Source: https://github.com/greebear/pytorch-learning/issues/1
Finds: gradients-accumulate
"""
import torch
from torch import nn

from probes import Probe


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 3 * x + 0.5 + 0.1 * torch.randn(64, 1)
    model = nn.Linear(1, 1)
    lr = 0.05
    with Probe(model, None, run_dir=run_dir) as probe:
        for epoch in range(30):
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            for p in model.parameters():
                p.data -= lr * p.grad.data                      # the bug: p.grad.data.zero_() never follows
            probe.step()
