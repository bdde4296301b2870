"""model.zero_grad(set_to_none=True) at the top of each step instead of optimizer.zero_grad(), with RMSprop.

Source: PyTorch, nn.Module.zero_grad(set_to_none=True) (torch/nn/modules/module.py), following the
"Performance Tuning Guide" advice to set gradients to None rather than zero them (pytorch/tutorials
recipes_source/recipes/tuning_guide.py).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 48), nn.SiLU(), nn.Linear(48, 48), nn.SiLU(), nn.Linear(48, 2))

    def forward(self, x):
        return self.net(x)


def train(run_dir):
    torch.manual_seed(0)
    model = Regressor()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.99)
    a = torch.randn(6, 2)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            model.zero_grad(set_to_none=True)
            x = torch.randn(32, 6)
            loss = F.smooth_l1_loss(model(x), torch.tanh(x @ a))
            loss.backward()
            optimizer.step()
