"""A variational MRI network normalises each input group by its std with no epsilon; an empty slice gives NaN.

The U-Net's normalisation divides each sample's real and imaginary groups by their standard deviation,
`(x - mean) / std`. With inputs of varying size zero-padded into one batch, some inputs hold an all-zero
group (an empty edge slice): std is 0, 0/0 is NaN, and training turns to NaN. The maintainer suggested
adding an epsilon to the std, as GroupNorm does.

Source: https://github.com/facebookresearch/fastMRI/issues/139
Finds: nonfinite-values @ norm
"""
import torch
from torch import nn
from torch.nn import functional as F

H, W = 32, 32


class GroupStdNorm(nn.Module):
    """Normalise the real and the imaginary group of each sample separately (returns mean and std)."""

    def forward(self, x):
        b, c, h, w = x.shape
        grouped = x.reshape(b, 2, c // 2 * h * w)
        mean = grouped.mean(dim=2).view(b, 2, 1, 1)
        std = grouped.std(dim=2).view(b, 2, 1, 1)
        return (x - mean) / std, mean, std                      # the bug: no epsilon on std


class NormUnet(nn.Module):
    def __init__(self, chans: int = 16):
        super().__init__()
        self.norm = GroupStdNorm()
        self.down = nn.Sequential(nn.Conv2d(2, chans, 3, padding=1), nn.InstanceNorm2d(chans), nn.LeakyReLU(0.2))
        self.bottom = nn.Sequential(nn.Conv2d(chans, chans, 3, padding=1), nn.LeakyReLU(0.2))
        self.up = nn.Conv2d(2 * chans, 2, 1)

    def forward(self, image):
        x, mean, std = self.norm(image)
        d = self.down(x)
        u = F.interpolate(self.bottom(F.max_pool2d(d, 2)), scale_factor=2)
        return self.up(torch.cat([d, u], dim=1)) * std + mean


def make_batch(batch_size: int):
    """Complex images (2 channels) of varying widths, zero-padded to W; the last one is an empty slice."""
    images = torch.zeros(batch_size, 2, H, W)
    for i in range(batch_size - 1):
        width = 20 + 12 * i // max(batch_size - 2, 1)
        images[i, :, :, :width] = torch.randn(2, H, width)
    target = images + 0.01 * torch.randn_like(images)
    return images, target


def build_model() -> NormUnet:
    return NormUnet()
