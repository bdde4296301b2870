"""Exponential moving average of the weights: a deepcopy updated after each step, validated in eval mode.

Source: the ModelEmaV2 pattern of huggingface/pytorch-image-models (timm/utils/model_ema.py): a frozen
copy.deepcopy of the model, ema = decay * ema + (1 - decay) * weights, buffers copied, evaluated with
.eval() under torch.no_grad().
Finds: nothing
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

DECAY = 0.99


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU())
        self.head = nn.Linear(64, 4)

    def forward(self, x):
        return self.head(self.body(x))


@torch.no_grad()
def ema_update(ema, model, decay):
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.dtype.is_floating_point:
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        else:
            e.copy_(p)                                     # num_batches_tracked


def train(run_dir):
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    w = torch.randn(16, 4)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        ema = copy.deepcopy(model).eval()
        ema.requires_grad_(False)
        for step in range(30):
            x = torch.randn(32, 16)
            loss = F.cross_entropy(model(x), (x @ w).argmax(1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            ema_update(ema, model, DECAY)
            if (step + 1) % 10 == 0:
                with torch.no_grad():
                    xv = torch.randn(64, 16)
                    acc = (ema(xv).argmax(1) == (xv @ w).argmax(1)).float().mean()
                probe.log(ema_val_acc=float(acc))
