"""A keyword-spotting toolkit's training executor clips and steps, but never clears the gradients.

A reader of the executor noticed that each batch runs the model, `loss.backward()`, `clip_grad_norm_` and
`optimizer.step()`, with no `optimizer.zero_grad()` anywhere; the maintainers confirmed it was a bug and the
fix added `zero_grad()` above `backward()`. Clipping hides part of the damage (the norm of the piled-up sum
is capped), but each update still follows the sum of every gradient so far. Rewritten with a small
convolutional keyword classifier over random filterbank frames; the loop shape (forward, loss, backward,
clip at 50, step) is the executor's.

Source: https://github.com/wenet-e2e/wekws/issues/72
Finds: gradients-accumulate
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class KeywordNet(nn.Module):
    def __init__(self, mels: int = 40, keywords: int = 3):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(mels, 64, 5, padding=2), nn.ReLU(),
                                  nn.Conv1d(64, 64, 5, padding=2), nn.ReLU())
        self.out = nn.Linear(64, keywords)

    def forward(self, feats):                                   # (B, T, mels)
        h = self.conv(feats.transpose(1, 2)).mean(dim=2)
        return self.out(h)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    feats = torch.randn(160, 50, 40)
    labels = (feats[:, :, :3].mean(dim=(1, 2)) > 0).long() + (feats[:, :, 3:6].mean(dim=(1, 2)) > 0.1).long()
    loader = DataLoader(TensorDataset(feats, labels), batch_size=16, shuffle=True)
    model = KeywordNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        model.train()
        for epoch in range(2):
            for x, y in probe.wrap(loader):
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                loss.backward()                                 # the bug: no optimizer.zero_grad() before it
                nn.utils.clip_grad_norm_(model.parameters(), 50.0)
                optimizer.step()
