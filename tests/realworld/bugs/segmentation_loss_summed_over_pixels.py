"""A semantic-segmentation trainer reports a huge loss: its cross-entropy is summed over pixels, not averaged.

The training config set the loss's `size_average` to False, so the 2D cross-entropy adds up the loss of
every pixel of every image. The first loss is tens of thousands instead of about log(number of classes);
the fix suggested in the thread was `size_average: True`.

Source: https://github.com/meetps/pytorch-semseg/issues/212
Finds: suspicious-initial-loss @ classifier
"""
import torch
from torch import nn
from torch.nn import functional as F

N_CLASSES, SIZE = 19, 64
LOSS_CONFIG = {"name": "cross_entropy", "size_average": False}


class TinyFCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.classifier = nn.Conv2d(32, N_CLASSES, 1)

    def forward(self, x):
        return F.interpolate(self.classifier(self.backbone(x)), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 3, SIZE, SIZE), torch.randint(0, N_CLASSES, (batch_size, SIZE, SIZE))


def loss_fn(logits, target):
    """cross_entropy2d(input, target, size_average=...) as in the trainer."""
    reduction = "mean" if LOSS_CONFIG["size_average"] else "sum"     # the bug: summed over all pixels
    return F.cross_entropy(logits, target, ignore_index=250, reduction=reduction)
