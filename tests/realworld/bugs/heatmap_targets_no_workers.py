"""A 3D animal-pose trainer prepares images and keypoint heatmaps on the CPU with num_workers=0.

Every sample is decoded, augmented and turned into one Gaussian heatmap per keypoint inside __getitem__;
with the DataLoader's workers set to 0 the training loop does all of that itself between steps and the
GPU sits at 0% most of the time (the maintainer: "data preparation is done on cpu and takes a while. it is
highly recommended to use a big number of workers").

Source: https://github.com/runa91/barc_release/issues/9
Finds: dataloader-stall
"""
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

KEYPOINTS, SIZE, HEATMAP = 20, 64, 16


class StanfordExtraLike(Dataset):
    def __len__(self) -> int:
        return 128

    def __getitem__(self, index: int):
        time.sleep(0.004)                                       # JPEG decode + crop/rotate augmentation
        g = torch.Generator().manual_seed(index)
        image = torch.rand(3, SIZE, SIZE, generator=g)
        joints = torch.rand(KEYPOINTS, 2, generator=g) * HEATMAP
        ys, xs = torch.meshgrid(torch.arange(HEATMAP), torch.arange(HEATMAP), indexing="ij")
        heatmaps = torch.stack([torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2))
                                for x, y in joints])            # one Gaussian per keypoint, in a Python loop
        return image, heatmaps


class HourglassLite(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(32, KEYPOINTS, 1))

    def forward(self, x):
        return self.net(x)


def make_loader() -> DataLoader:
    return DataLoader(StanfordExtraLike(), batch_size=8, shuffle=True, num_workers=0)   # the bug: no workers
