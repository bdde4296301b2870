"""A lane-detection toolbox's lane-existence head ends in a sigmoid and is trained with BCEWithLogitsLoss.

In the toolbox's segmentation-based lane detectors (SCNN, RESA), `ExistHead` turns the feature map into
per-lane scores (dropout, 1x1 conv, softmax, pooling, fc9, ReLU, fc10) and returns `torch.sigmoid(x)` as
`output['exist']`, while `LaneSeg.loss` adds `0.1 * BCEWithLogitsLoss()(output['exist'], lane_exist)` to
the segmentation NLL loss: the existence probabilities are passed through a second sigmoid. The reporter
pointed out the sigmoid is applied twice; the doubly squashed score stays in [0.5, 0.73], so a lane that is
absent can never be predicted with less than even odds and its loss never falls below log 2.

Source: https://github.com/Turoad/lanedet/issues/32
Finds: loss-input-mismatch
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

NUM_CLASSES, IMG_H, IMG_W, CH, STRIDE, BG_WEIGHT = 5, 32, 64, 16, 8, 0.4      # 4 lanes + background


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, CH, 3, 2, 1), nn.BatchNorm2d(CH), nn.ReLU(),
            nn.Conv2d(CH, CH, 3, 2, 1), nn.BatchNorm2d(CH), nn.ReLU(),
            nn.Conv2d(CH, CH, 3, 2, 1), nn.BatchNorm2d(CH), nn.ReLU())

    def forward(self, x):
        return self.layers(x)


class PlainDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout2d(0.1)
        self.conv8 = nn.Conv2d(CH, NUM_CLASSES, 1)

    def forward(self, x):
        x = self.conv8(self.dropout(x))
        return {"seg": F.interpolate(x, size=[IMG_H, IMG_W], mode="bilinear", align_corners=False)}


class ExistHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout2d(0.1)
        self.conv8 = nn.Conv2d(CH, NUM_CLASSES, 1)
        self.fc9 = nn.Linear(NUM_CLASSES * (IMG_W // (STRIDE * 2)) * (IMG_H // (STRIDE * 2)), 128)
        self.fc10 = nn.Linear(128, NUM_CLASSES - 1)

    def forward(self, x):
        x = F.softmax(self.conv8(self.dropout(x)), dim=1)
        x = F.avg_pool2d(x, 2, stride=2).flatten(1)
        x = self.fc10(F.relu(self.fc9(x)))
        return {"exist": torch.sigmoid(x)}


class LaneDetector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.decoder = PlainDecoder()
        self.exist = ExistHead()

    def forward(self, img):
        x = self.backbone(img)
        return {**self.decoder(x), **self.exist(x)}

    def loss(self, output, batch):
        weights = torch.ones(NUM_CLASSES)
        weights[0] = BG_WEIGHT
        criterion = nn.NLLLoss(ignore_index=255, weight=weights)
        criterion_exist = nn.BCEWithLogitsLoss()
        seg_loss = criterion(F.log_softmax(output["seg"], dim=1), batch["mask"].long())
        exist_loss = 0.1 * criterion_exist(output["exist"], batch["lane_exist"].float())   # the bug: sigmoid twice
        return {"loss": seg_loss + exist_loss, "loss_stats": {"seg_loss": seg_loss, "exist_loss": exist_loss}}


def batch(n):
    lane_exist = (torch.rand(n, NUM_CLASSES - 1) < 0.6).long()
    img = 0.1 * torch.randn(n, 3, IMG_H, IMG_W)
    mask = torch.zeros(n, IMG_H, IMG_W, dtype=torch.long)
    for lane in range(NUM_CLASSES - 1):
        cols = slice(lane * 16 + 6, lane * 16 + 10)           # a vertical stripe where the lane is painted
        img[:, :, :, cols] += lane_exist[:, lane, None, None, None]
        mask[:, :, cols] = (lane + 1) * lane_exist[:, lane, None, None]
    return img, {"mask": mask, "lane_exist": lane_exist}


def train(run_dir):
    torch.manual_seed(0)
    net = LaneDetector()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    net.train()
    with Probe(net, optimizer, run_dir=run_dir) as probe:
        for it in range(30):
            img, targets = batch(8)
            output = net(img)
            ret = net.loss(output, targets)
            optimizer.zero_grad()
            ret["loss"].backward()
            optimizer.step()
            probe.log(**{k: v.item() for k, v in ret["loss_stats"].items()})
