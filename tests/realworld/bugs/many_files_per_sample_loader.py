"""A driving dataset opens many files for every sample: the GPU waits on data loading most of the time.

Each training sample is assembled from several camera images, a LiDAR sweep, measurements and label files,
all read from disk in __getitem__. The reporter saw the GPU at 0% for long stretches while CPU sat idle;
the maintainer: "Loading data from the disk is a bottleneck in this code because every sample needs to
open many input and label files."

Source: https://github.com/autonomousvision/transfuser/issues/154
Finds: dataloader-stall
"""
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

FILES_PER_SAMPLE = ["rgb_front", "rgb_left", "rgb_right", "lidar", "measurements", "boxes", "route", "depth"]


class CarlaFrames(Dataset):
    def __len__(self) -> int:
        return 160

    def _read(self, kind: str, index: int) -> torch.Tensor:
        time.sleep(0.0015)                                      # one file open + read on network storage
        g = torch.Generator().manual_seed(index * len(FILES_PER_SAMPLE) + FILES_PER_SAMPLE.index(kind))
        return torch.randn(16, generator=g)

    def __getitem__(self, index: int):
        parts = [self._read(kind, index) for kind in FILES_PER_SAMPLE]     # the bug: many reads per sample
        target = parts[-1][:2]                                  # waypoint offset
        return torch.cat(parts[:-1]), target


class WaypointPredictor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16 * (len(FILES_PER_SAMPLE) - 1), 128), nn.ReLU(), nn.Linear(128, 2))

    def forward(self, x):
        return self.net(x)


def make_loader() -> DataLoader:
    return DataLoader(CarlaFrames(), batch_size=8, shuffle=True, num_workers=2)
