"""A hardware-aware training library's first example trains one layer without ever calling zero_grad().

The "simple layer" example of the analog-AI toolkit fits a single 4-to-2 linear layer to two fixed examples
with SGD (lr 0.1) for 100 epochs, calling `loss.backward()` and `opt.step()` each epoch but never
`opt.zero_grad()`. The reporter printed the loss: it falls for five epochs, then climbs back up (from 0.06
to 0.87 by epoch ten), because every step follows the sum of all gradients so far; with `opt.zero_grad()`
after each step the loss falls steadily. The analog layer is replaced here by nn.Linear and the analog SGD by
torch.optim.SGD; the loop is the example's.

Source: https://github.com/IBM/aihwkit/issues/446
Finds: gradients-accumulate
"""
import torch
from torch import nn
from torch.nn.functional import mse_loss

from probes import Probe


def train(run_dir):
    torch.manual_seed(0)
    x = torch.tensor([[0.3, 0.1, 0.5, 0.2], [0.1, 0.4, 0.2, 0.2]])
    y = torch.tensor([[1.1, 0.4], [0.8, 0.2]])
    model = nn.Linear(4, 2, bias=True)                        # stands in for AnalogLinear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)         # stands in for AnalogSGD
    with Probe(model, opt, run_dir=run_dir):
        for epoch in range(40):
            pred = model(x)
            loss = mse_loss(pred, y)
            loss.backward()                                   # the bug: no opt.zero_grad() anywhere in the loop
            opt.step()
