"""A portfolio rebalancer optimises share counts with SGD at lr=0.01: the shares never visibly move.

The parameter is the number of shares held in each of 16 positions (values between 1 and 50); the loss is
the MSE between the resulting portfolio weights (market value / total) and the target weights. Those
weights are tiny fractions, so the gradients with respect to the share counts are of order 1e-5, and with
`lr=0.01` each step changes a share count by ~1e-7 of its value: the question asked why the parameters do
not update. The answer: nothing is disconnected, the learning rate is far too small for the scale of the
parameter and its gradient (and it has to be raised by orders of magnitude).

Source: https://php.xlycwl.com/faq/1710634.html
Finds: update-ratio @ (the model)
"""
import numpy as np
import torch
from torch import nn

from probes import Probe

POSITIONS, CASH_BUFFER = 16, 0.001


class PortfolioRebalancer(nn.Module):
    def __init__(self, starting_shares, prices):
        super().__init__()
        self.shares = nn.Parameter(starting_shares)
        self.register_buffer("prices", prices)

    def forward(self):
        final_shares = self.shares.clamp(0.0)
        mv = final_shares * self.prices
        return mv / mv.sum()                                        # portfolio weights


def train(run_dir: str) -> None:
    np.random.seed(10)
    starting_shares = torch.tensor(np.random.uniform(low=1, high=50, size=POSITIONS), dtype=torch.float64)
    prices = torch.tensor(np.random.uniform(low=1, high=100, size=POSITIONS), dtype=torch.float64)
    prices[-1] = 1.0
    target = torch.tensor([(1 - CASH_BUFFER) / (POSITIONS - 1)] * (POSITIONS - 1) + [CASH_BUFFER],
                          dtype=torch.float64)
    model = PortfolioRebalancer(starting_shares, prices)
    loss_func = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)       # the bug: lr far below the problem's scale
    with Probe(model, optimizer, run_dir=run_dir):
        for _ in range(40):
            optimizer.zero_grad()
            loss = loss_func(model(), target)
            loss.backward()
            optimizer.step()
