"""An LSTM sequence regressor trained with clip_grad_norm_(max_norm=1.0) between backward and step; the norm is logged.

Source: PyTorch, torch.nn.utils.clip_grad_norm_ (torch/nn/utils/clip_grad.py), used as in pytorch/examples
word_language_model/main.py and transformers' Trainer (max_grad_norm=1.0).
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 32, num_layers=2, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def train(run_dir):
    torch.manual_seed(0)
    model = Regressor()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x = torch.randn(16, 25, 4)
            y = x[:, :, 0].sum(1, keepdim=True)            # a running sum to predict
            loss = nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            total_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            probe.log(grad_total_norm=float(total_norm))
