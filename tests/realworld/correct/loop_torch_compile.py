"""A model compiled with torch.compile(backend="aot_eager") trained in a plain loop; the Probe watches the
original module, whose parameters the compiled wrapper shares.

Source: PyTorch, torch.compile (torch/__init__.py; "Introduction to torch.compile" tutorial, pytorch/tutorials
intermediate_source/torch_compile_tutorial.py: compile the model, then train it as usual), with the
aot_eager debugging backend so that no C++ compiler is needed.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.norm = nn.LayerNorm(64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 3)

    def forward(self, x):
        x = F.gelu(self.norm(self.fc1(x)))
        return self.out(F.gelu(self.fc2(x)))


def train(run_dir):
    torch.manual_seed(0)
    torch._dynamo.reset()
    model = MLP()
    compiled = torch.compile(model, backend="aot_eager")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    proj = torch.randn(16, 3)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(25):
            x = torch.randn(32, 16)
            loss = F.cross_entropy(compiled(x), (x @ proj).argmax(1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
