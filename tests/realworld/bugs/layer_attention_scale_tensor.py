"""A super-resolution network's layer-attention scale is a plain tensor with requires_grad, never trained.

In the holistic attention network the layer attention module (LAM) weighs the features of the residual
groups and adds them back scaled by a learnable `self.scale`. The reporter found that the scale never
changes: it is created as a tensor with requires_grad=True, the model does not contain it, and the
optimizer built from model.parameters() never sees it.

Source: https://github.com/Jungjaewon/Single_Image_SuperResolution_via_Holistic_Attention_Network/issues/2
Finds: unregistered-parameter @ lam
"""
import torch
from torch import nn

CHANNELS, GROUPS, SIZE = 16, 3, 16


class LAM_Module(nn.Module):
    """Layer attention: correlations between the feature maps of the residual groups."""

    def __init__(self):
        super().__init__()
        self.scale = torch.zeros(1, requires_grad=True)           # the bug: not an nn.Parameter
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):                                       # x: (batch, groups, channels, H, W)
        b, n, c, h, w = x.shape
        query = x.view(b, n, -1)
        energy = torch.bmm(query, query.permute(0, 2, 1))
        energy = energy.max(-1, keepdim=True)[0].expand_as(energy) - energy
        attention = self.softmax(energy)
        out = torch.bmm(attention, query).view(b, n, c, h, w)
        return (self.scale * out + x).view(b, -1, h, w)


class ResidualGroup(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class HAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, CHANNELS, 3, padding=1)
        self.groups = nn.ModuleList(ResidualGroup() for _ in range(GROUPS))
        self.lam = LAM_Module()
        self.fuse = nn.Conv2d(CHANNELS * GROUPS, CHANNELS, 3, padding=1)
        self.tail = nn.Conv2d(CHANNELS, 3, 3, padding=1)

    def forward(self, x):
        h = self.head(x)
        features = []
        for group in self.groups:
            h = group(h)
            features.append(h.unsqueeze(1))
        fused = self.fuse(self.lam(torch.cat(features, dim=1)))
        return x + self.tail(fused)


def build_model() -> HAN:
    return HAN()


def make_batch(batch_size: int):
    hr = torch.rand(batch_size, 3, SIZE, SIZE)
    lr = hr + 0.05 * torch.randn_like(hr)                     # a degraded copy to restore
    return lr, hr
