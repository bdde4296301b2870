"""A traffic-light network sums its training and validation losses as tensors: the graphs stay in memory.

The loop accumulates `running_loss += loss` (and the MSE and cross-entropy parts the same way) for the
epoch statistics, and the validation pass (run without torch.no_grad()) does the same with
`val_running_loss += loss`. Each `loss` carries its autograd graph; the validation graphs are never
backpropagated, so the running sums (kept per epoch for the loss curves) hold every one of them alive with
all its saved activations, and RAM grows epoch after epoch. The author's fix: `+= loss.item()` everywhere.

Source: https://github.com/samuelyu2002/ImVisible/issues/2
Finds: memory-growth
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class LytNet(nn.Module):
    """Light state (5 classes) and the zebra-crossing direction (two points, regression)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.classify = nn.Linear(64 * 16, 5)
        self.direction = nn.Linear(64 * 16, 4)

    def forward(self, x):
        h = self.features(x)
        return self.classify(h), self.direction(h)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    def split(n):
        return TensorDataset(torch.rand(n, 3, 64, 96), torch.randint(0, 5, (n,)), torch.rand(n, 4))
    loader = DataLoader(split(64), batch_size=8, shuffle=True)
    val_loader = DataLoader(split(24), batch_size=8)
    net = LytNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    with Probe(net, optimizer, run_dir=run_dir) as probe:
        history = []
        for epoch in range(6):
            running_loss = running_loss_MSE = running_loss_cross_entropy = 0.0
            for images_b, labels_b, points_b in probe.wrap(loader):
                logits, pred_points = net(images_b)
                cross_entropy = F.cross_entropy(logits, labels_b)
                MSE = F.mse_loss(pred_points, points_b)
                loss = cross_entropy + MSE
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                running_loss += loss                            # the bug: tensors, graphs and all
                running_loss_MSE += MSE
                running_loss_cross_entropy += cross_entropy
            val_running_loss = val_mse_loss = val_ce_loss = 0.0
            for images_b, labels_b, points_b in val_loader:
                logits, pred_points = net(images_b)
                cross_entropy = F.cross_entropy(logits, labels_b)
                MSE = F.mse_loss(pred_points, points_b)
                loss = cross_entropy + MSE
                val_running_loss += loss                        # ... never backpropagated: activations kept
                val_mse_loss += MSE
                val_ce_loss += cross_entropy
            history.append((running_loss, val_running_loss))    # epoch statistics, still tensors
