"""Mixed precision on CPU: forward and loss under torch.autocast("cpu", dtype=torch.bfloat16), backward outside.

Source: PyTorch, torch.autocast for CPU with bfloat16 (torch/amp/autocast_mode.py; "Automatic Mixed Precision"
docs: bfloat16 needs no GradScaler).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 128), nn.GELU(), nn.LayerNorm(128), nn.Linear(128, 128), nn.GELU(),
                          nn.Linear(128, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    proj = torch.randn(32, 10)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x = torch.randn(32, 32)
            y = (x @ proj).argmax(1)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)                     # matmuls in bfloat16, weights stay float32
                loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
