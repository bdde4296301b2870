"""After pruning, model speed-up swaps in smaller layers, but fine-tuning keeps the old optimizer.

The optimizer is built over the dense model; then the pruner's speed-up replaces the masked layers by
smaller ones (copying the kept weights) and fine-tuning starts with the same optimizer. It holds the
replaced layers' old tensors, so the new, smaller layers get gradients but are never updated (the
maintainer: "the parameters registered in the optimizer are outdated ... reinitialize a new optimizer").

Source: https://github.com/microsoft/nni/issues/4521
(Both fc1 and fc2 are replaced, so none of the model's trainable parameters is in the optimizer: the
finding is about the model as a whole.)
Finds: param-not-in-optimizer @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def speedup(model: Net, keep: torch.Tensor) -> None:
    """Replace fc1/fc2 by layers without the pruned hidden units (what the speed-up tool does)."""
    fc1 = nn.Linear(64, len(keep))
    fc2 = nn.Linear(len(keep), 10)
    with torch.no_grad():
        fc1.weight.copy_(model.fc1.weight[keep])
        fc1.bias.copy_(model.fc1.bias[keep])
        fc2.weight.copy_(model.fc2.weight[:, keep])
        fc2.bias.copy_(model.fc2.bias)
    model.fc1, model.fc2 = fc1, fc2


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    x_all, y_all = torch.randn(512, 64), torch.randint(0, 10, (512,))
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    keep = model.fc1.weight.norm(dim=1).argsort(descending=True)[:64]     # L1/L2-norm pruning: half the units
    speedup(model, keep)                                         # the bug: optimizer still holds the old layers
    with Probe(model, optimizer, run_dir=run_dir):
        for epoch in range(2):
            for i in range(0, 512, 16):
                loss = F.cross_entropy(model(x_all[i:i + 16]), y_all[i:i + 16])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
