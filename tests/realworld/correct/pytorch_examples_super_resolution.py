"""ESPCN super-resolution net from pytorch/examples: 4 convs, sub-pixel PixelShuffle upscaling, orthogonal init.

Source: pytorch/examples, super_resolution/model.py (Net) and main.py (MSE loss, Adam).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import init

UPSCALE = 3


class Net(nn.Module):
    def __init__(self, upscale_factor=UPSCALE):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 64, 5, 1, 2)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv3 = nn.Conv2d(64, 32, 3, 1, 1)
        self.conv4 = nn.Conv2d(32, upscale_factor ** 2, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv4.weight)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))


def make_batch(batch_size):
    hr = torch.rand(batch_size, 1, 48, 48)                           # the Y channel of a crop
    lr = nn.functional.avg_pool2d(hr, UPSCALE)                        # downscaled input
    return lr, hr


def loss_fn(sr, hr):
    return nn.functional.mse_loss(sr, hr)


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
