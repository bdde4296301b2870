"""float16 mixed precision on CPU with a GradScaler: scaled backward, unscale_ before clipping, scaler.step and
scaler.update; the unscaled loss is logged.

Source: PyTorch, torch.amp.GradScaler("cpu") and torch.autocast("cpu", dtype=torch.float16) (torch/amp/
grad_scaler.py, autocast_mode.py), the "Working with Unscaled Gradients" recipe of the AMP examples docs
(notes/amp_examples.rst: scaler.unscale_(optimizer) then clip_grad_norm_).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 128), nn.GELU(), nn.Linear(128, 128), nn.GELU(), nn.LayerNorm(128),
                          nn.Linear(128, 6))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scaler = torch.amp.GradScaler("cpu")
    proj = torch.randn(32, 6)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x = torch.randn(32, 32)
            y = (x @ proj).argmax(1)
            with torch.autocast("cpu", dtype=torch.float16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            scaler.step(optimizer)
            scaler.update()
            probe.log(loss=loss.item(), loss_scale=scaler.get_scale())
