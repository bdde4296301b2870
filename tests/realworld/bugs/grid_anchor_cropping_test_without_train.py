"""An image-cropping model's training script calls net.eval() in test() and never net.train() again.

The grid-anchor cropping model scores candidate crops of an image: a CNN backbone, a 1x1 dimension
reduction, RoI/RoD-aligned crop features and a small head (conv + BatchNorm + ReLU, conv + BatchNorm + ReLU,
Dropout(0.5), conv) regressing each crop's mean opinion score with SmoothL1. `train()` calls `net.train()`
once before the 80-epoch loop and `test()` at the end of every epoch, and `test()` begins with
`net.eval()`. From the second epoch on, BatchNorm runs on frozen running statistics and dropout is off. The
reporter asked whether freezing BatchNorm after the first epoch was a trick or a bug; the author confirmed it
was a bug, and on checking found the BatchNorm mode changes the results a lot (with a batch of one image,
batch statistics are unstable), so the mode should be chosen on purpose rather than left to test().

Source: https://github.com/HuiZeng/Grid-Anchor-based-Image-Cropping-Pytorch/issues/2
Finds: train-mode-off
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

ALIGN, REDDIM, CROPS = 3, 16, 16


def conv_bn(c_in, c_out, stride):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU6(inplace=True))


class CropModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.Feat_ext = nn.Sequential(conv_bn(3, 16, 2), conv_bn(16, 32, 2), conv_bn(32, 32, 1))   # mobilenet-ish
        self.DimRed = nn.Conv2d(32, REDDIM, 1)
        self.FC_layers = nn.Sequential(
            nn.Conv2d(REDDIM, 64, ALIGN), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.Conv2d(64, 32, 1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Dropout(p=0.5), nn.Conv2d(32, 1, 1))

    def forward(self, im_data, boxes):
        feat = self.DimRed(self.Feat_ext(im_data))[0]           # batch size 1
        scale = feat.shape[-1] / im_data.shape[-1]
        aligned = []
        for x0, y0, x1, y1 in (boxes * scale).long().tolist():  # stands in for RoIAlign / RoDAlign
            aligned.append(F.adaptive_avg_pool2d(feat[:, y0:y1 + 1, x0:x1 + 1], ALIGN))
        return self.FC_layers(torch.stack(aligned)).flatten()


def sample():
    image = torch.rand(1, 3, 64, 64)
    xy = torch.randint(0, 32, (CROPS, 2))
    wh = torch.randint(16, 32, (CROPS, 2))
    boxes = torch.cat([xy, (xy + wh).clamp(max=63)], dim=1).float()
    mos = torch.stack([image[0, :, int(b[1]):int(b[3]), int(b[0]):int(b[2])].mean() for b in boxes]) * 5
    return image, boxes, mos


def test(net, samples):
    net.eval()                                   # the bug: nothing puts the model back in training mode
    total = 0.0
    with torch.no_grad():
        for image, boxes, mos in samples:
            total += F.smooth_l1_loss(net(image, boxes), mos).item()
    return total / len(samples)


def train(run_dir):
    torch.manual_seed(0)
    net = CropModel()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    train_set, test_set = [sample() for _ in range(10)], [sample() for _ in range(2)]
    with Probe(net, optimizer, run_dir=run_dir) as probe:
        net.train()
        for epoch in range(3):
            for image, boxes, mos in train_set:
                out = net(image, boxes)
                loss = F.smooth_l1_loss(out.squeeze(), mos)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            probe.log(test_loss=test(net, test_set))
