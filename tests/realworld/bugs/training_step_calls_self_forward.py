"""A research-framework README has training_step() call `self.forward(x)`, skipping the module's hooks.

The example model's training_step computes its predictions with `self.forward(x)`; the reporter asked
whether `self(x)` should be recommended instead so that hooks run, and the docs were changed to call the
module. Here the same model is driven by a plain loop that calls its training_step.

Source: https://github.com/Lightning-AI/pytorch-lightning/issues/632
Finds: forward-called-directly @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class CoolSystem(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return torch.relu(self.l1(x.view(x.size(0), -1)))

    def training_step(self, batch):
        x, y = batch
        y_hat = self.forward(x)                                 # the bug: should be self(x)
        return F.cross_entropy(y_hat, y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.02)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,)))
    model = CoolSystem()
    optimizer = model.configure_optimizers()
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(2):
            for batch in probe.wrap(DataLoader(data, batch_size=32, shuffle=True)):
                loss = model.training_step(batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
