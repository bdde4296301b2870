"""A CIFAR-10 convnet starts at a loss of ~14 instead of log(10) = 2.3: raw-scale pixels into 'normal'-init layers.

The course's data loader subtracts the mean image but does not scale the pixels, so the inputs span about
-130..130; the dense layers are initialised from N(0, 0.05) ("normal" init). The untrained network already
outputs huge, confident logits, and the reporter asked why the first loss is far above the ~2.3 expected
from uniform predictions over 10 classes.

Source: https://github.com/keras-team/keras/issues/6259
Finds: suspicious-initial-loss @ fc2
"""
import torch
from torch import nn


class CifarConvNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * 8 * 8, 512)
        self.fc2 = nn.Linear(512, classes)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, std=0.05)                 # the bug (with the input scale): 'normal' init
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.flatten(self.features(x)))))


def make_batch(batch_size: int):
    pixels = torch.randint(0, 256, (batch_size, 3, 32, 32)).float()
    return pixels - 121.0, torch.randint(0, 10, (batch_size,))   # the bug: mean subtracted, never scaled
