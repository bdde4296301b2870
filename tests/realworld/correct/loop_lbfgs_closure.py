"""L-BFGS with a closure: the optimizer re-evaluates loss and gradients several times per step.

Source: pytorch/examples, time_sequence_prediction/train.py (a two-cell LSTMCell sequence model, optim.LBFGS
with lr 0.8, the closure that zeroes, forwards, computes MSE and backpropagates), after the closure contract of
torch.optim.LBFGS (torch/optim/lbfgs.py); shorter sine waves and a smaller network.
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe


class Sequence(nn.Module):
    def __init__(self, hidden=24):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, inputs):
        b = inputs.size(0)
        h1 = c1 = h2 = c2 = torch.zeros(b, self.hidden)
        outputs = []
        for x in inputs.split(1, dim=1):
            h1, c1 = self.lstm1(x, (h1, c1))
            h2, c2 = self.lstm2(h1, (h2, c2))
            outputs.append(self.linear(h2))
        return torch.cat(outputs, dim=1)


def train(run_dir):
    torch.manual_seed(0)
    t = torch.arange(41).float()
    phase = torch.randint(-20, 20, (16, 1)).float()
    data = torch.sin((t + phase) / 4.0)
    inputs, targets = data[:, :-1], data[:, 1:]
    model = Sequence()
    criterion = nn.MSELoss()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=0.8, max_iter=5)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(12):
            def closure():
                optimizer.zero_grad()
                loss = criterion(model(inputs), targets)
                loss.backward()
                return loss
            loss = optimizer.step(closure)
            probe.log(loss=float(loss))
