"""A self-supervised DirectCLR model's InfoNCE loss module never calls super().__init__().

The new loss class subclasses nn.Module and sets its temperature in __init__ without first calling
`super().__init__()`. Nothing fails when it is built (it assigns no submodule or parameter), so the bug
shows up later and far away: the first time anything walks the modules or calls the loss, PyTorch raises
"'InfoNCELoss' object has no attribute '_modules'" / "'_backward_hooks'". The reviewer: "you have to call
`super().__init__()` in the `__init__` function of the loss. Otherwise the `nn.Module` is not correctly
initialized."

Source: https://github.com/lightly-ai/lightly/pull/963
Finds: missing-super-init @ criterion
"""
import torch
from torch import nn
from torch.nn import functional as F


class InfoNCELoss(nn.Module):
    def __init__(self, temperature: float = 0.1):
        self.temperature = temperature                          # the bug: no super().__init__() first

    def forward(self, z0, z1):
        z0, z1 = F.normalize(z0, dim=1), F.normalize(z1, dim=1)
        logits = z0 @ z1.t() / self.temperature
        labels = torch.arange(z0.size(0))
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


class DirectCLR(nn.Module):
    """No projector: the loss sees the first `sub_dim` dimensions of the backbone's representation."""

    def __init__(self, sub_dim: int = 32):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.sub_dim = sub_dim
        self.criterion = InfoNCELoss(temperature=0.1)

    def forward(self, x0, x1):
        r0, r1 = self.backbone(x0), self.backbone(x1)
        return self.criterion(r0[:, :self.sub_dim], r1[:, :self.sub_dim])


def make_batch(batch_size: int):
    images = torch.rand(batch_size, 3, 32, 32)
    view0 = images.flip(-1) + 0.05 * torch.randn_like(images)              # two augmented views
    view1 = images * (0.8 + 0.4 * torch.rand(batch_size, 1, 1, 1))
    return (view0, view1), torch.zeros(batch_size)


def loss_fn(loss, _):
    return loss
