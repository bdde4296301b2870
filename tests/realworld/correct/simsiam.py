"""SimSiam self-supervised learning: shared encoder + projector, a predictor, and a stop-gradient on the targets.

Source: facebookresearch/simsiam, simsiam/builder.py (SimSiam: projector ending in BatchNorm1d(affine=False),
bottleneck predictor, forward returning p1, p2, z1.detach(), z2.detach()) and main_simsiam.py (negative cosine
loss, SGD lr 0.05 * batch / 256, momentum 0.9, weight decay 1e-4); the ResNet backbone replaced by a small CNN.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F


class SimSiam(nn.Module):
    def __init__(self, dim=64, pred_dim=16):
        super().__init__()
        backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                                 nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                                 nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        prev = 32
        self.encoder = nn.Sequential(
            backbone,
            nn.Linear(prev, prev, bias=False), nn.BatchNorm1d(prev), nn.ReLU(inplace=True),
            nn.Linear(prev, prev, bias=False), nn.BatchNorm1d(prev), nn.ReLU(inplace=True),
            nn.Linear(prev, dim, bias=False), nn.BatchNorm1d(dim, affine=False))    # output layer
        self.predictor = nn.Sequential(nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim),
                                       nn.ReLU(inplace=True), nn.Linear(pred_dim, dim))

    def forward(self, x1, x2):
        z1, z2 = self.encoder(x1), self.encoder(x2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return p1, p2, z1.detach(), z2.detach()      # stop-gradient: the targets are constants


def build_model():
    return SimSiam()


def make_batch(batch_size):
    images = torch.rand(batch_size, 3, 32, 32)

    def augment(x):                                  # stand-ins for crop / colour jitter / flip
        flip = torch.rand(x.size(0), 1, 1, 1) < 0.5
        x = torch.where(flip, x.flip(-1), x)
        return (x * (0.6 + 0.8 * torch.rand(x.size(0), 3, 1, 1)) + 0.05 * torch.randn_like(x)).clamp(0, 1)
    return (augment(images), augment(images)), torch.zeros(batch_size)


def loss_fn(outputs, _):
    p1, p2, z1, z2 = outputs
    return -(F.cosine_similarity(p1, z2, dim=1).mean() + F.cosine_similarity(p2, z1, dim=1).mean()) * 0.5


def make_optimizer(model):
    lr = 0.05 * 8 / 256
    return torch.optim.SGD([{"params": model.encoder.parameters(), "fix_lr": False},
                            {"params": model.predictor.parameters(), "fix_lr": True}],
                           lr=lr, momentum=0.9, weight_decay=1e-4)
