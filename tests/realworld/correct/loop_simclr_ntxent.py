"""SimCLR: two random augmentations of each image through an encoder and a projection head, NT-Xent
(normalised temperature-scaled cross-entropy) over the 2N views with the self-similarities masked out.

Source: sthalles/SimCLR, simclr.py (SimCLR.info_nce_loss: cosine similarity matrix, positives off the diagonal
by N, temperature 0.07, cross-entropy with label 0) and models/resnet_simclr.py (backbone + MLP head); a small
CNN for the ResNet, augmentations written as tensor ops (random crop via roll, flips, noise).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

TEMPERATURE, N = 0.07, 16


def augment(x):
    b = x.size(0)
    shifts = torch.randint(-3, 4, (2,))
    x = torch.roll(x, shifts=(int(shifts[0]), int(shifts[1])), dims=(2, 3))
    flip = torch.rand(b) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    x = x * (0.8 + 0.4 * torch.rand(b, 1, 1, 1))                  # brightness jitter
    return x + 0.05 * torch.randn_like(x)


def info_nce_loss(features, n_views=2):
    labels = torch.arange(features.size(0) // n_views).repeat(n_views)
    labels = (labels[None, :] == labels[:, None]).float()
    features = F.normalize(features, dim=1)
    similarity = features @ features.T
    mask = torch.eye(labels.size(0), dtype=torch.bool)
    labels = labels[~mask].view(labels.size(0), -1)
    similarity = similarity[~mask].view(similarity.size(0), -1)
    positives = similarity[labels.bool()].view(labels.size(0), -1)
    negatives = similarity[~labels.bool()].view(similarity.size(0), -1)
    logits = torch.cat([positives, negatives], dim=1) / TEMPERATURE
    return F.cross_entropy(logits, torch.zeros(logits.size(0), dtype=torch.long))


class SimCLRNet(nn.Module):
    def __init__(self, out_dim=32):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, out_dim))

    def forward(self, x):
        return self.head(self.backbone(x))


def train(run_dir):
    torch.manual_seed(0)
    model = SimCLRNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=1e-4)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            images = torch.randn(N, 3, 16, 16)
            views = torch.cat([augment(images), augment(images)], dim=0)
            loss = info_nce_loss(model(views))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
