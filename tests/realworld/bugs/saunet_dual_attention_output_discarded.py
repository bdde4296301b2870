"""A shape-attentive U-Net's dual-attention block computes its attended output, then returns the fused features.

In the published code, DualAttBlock fuses the upsampled and skip features (`fused`), computes a spatial
attention map and an SE-style channel attention, combines them as `out = channel * (1 + spatial)` as the
paper describes, and then returns `fused, spatial`: `out` is never used. The attention map is returned by the
model but its loss term is commented out, so neither attention branch reaches the loss; the reporter asked
why `out` was an unused variable and the authors confirmed the GitHub version should return `out, spatial`.

Source: https://github.com/sunjesse/shape-attentive-unet/issues/3
Finds: param-unreached @ dec.spatialAttn, param-unreached @ dec.channelAttn
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

CLASSES = 4


def conv_bn_relu(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SEModule(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x):
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * w


class SpatialAttentionBlock(nn.Module):
    def __init__(self, in_features, attn_features):
        super().__init__()
        self.down = nn.Conv2d(in_features, attn_features, 1, bias=False)
        self.bn = nn.BatchNorm2d(attn_features)
        self.phi = nn.Conv2d(attn_features, 1, 1)

    def forward(self, x):
        return torch.sigmoid(self.phi(F.relu(self.bn(self.down(x)))))


class DualAttBlock(nn.Module):
    def __init__(self, inchannels, outchannels):
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(inchannels[0], inchannels[0], 4, stride=2, padding=1),
                                nn.BatchNorm2d(inchannels[0]), nn.ReLU(inplace=True))
        self.c3x3rb = conv_bn_relu(sum(inchannels), outchannels)
        self.spatialAttn = SpatialAttentionBlock(outchannels, outchannels // 4)
        self.channelAttn = SEModule(outchannels, 4)

    def forward(self, x):                                    # x: (deeper features, skip features)
        fused = self.c3x3rb(torch.cat([x[1], self.up(x[0])], dim=1))
        spatial = self.spatialAttn(fused)
        channel = self.channelAttn(fused)
        out = torch.mul(spatial.expand_as(channel) + 1, channel)     # F(X) = C(X) * (1 + S(X))
        return fused, spatial                                # the bug: `out` is computed and dropped


class SAUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = conv_bn_relu(1, 16)
        self.enc2 = conv_bn_relu(16, 32)
        self.center = conv_bn_relu(32, 32)
        self.dec = DualAttBlock(inchannels=[32, 32], outchannels=32)
        self.dec1 = conv_bn_relu(32 + 16, 16)
        self.final = nn.Conv2d(16, CLASSES, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        center = self.center(F.max_pool2d(e2, 2))
        d, att = self.dec([center, e2])
        d1 = self.dec1(torch.cat([F.interpolate(d, scale_factor=2, mode="bilinear", align_corners=True), e1], 1))
        return self.final(d1), att


def dice_loss(logits, target):
    probs = logits.softmax(1)
    one_hot = F.one_hot(target, CLASSES).permute(0, 3, 1, 2).float()
    inter = (probs * one_hot).sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (probs.sum((0, 2, 3)) + one_hot.sum((0, 2, 3)) + 1)).mean()


def train(run_dir):
    torch.manual_seed(0)
    model = SAUNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(20):
            image = torch.rand(4, 1, 32, 32)
            target = (image[:, 0] * CLASSES).long().clamp(max=CLASSES - 1)   # a cardiac MRI stand-in
            optimizer.zero_grad()
            x_out, att = model(image)                        # att is kept for plotting only
            loss = F.cross_entropy(x_out, target) + dice_loss(x_out, target)
            loss.backward()
            optimizer.step()
