"""An FCN segmentation Trainer validates at the top of the epoch with model.eval() and never switches back.

Trainer.train_epoch() calls `self.model.train()` once, then, inside the batch loop, runs `self.validate()`
whenever `iteration % interval_validate == 0` (by default once per epoch, on the epoch's first batch).
validate() begins with `self.model.eval()` and returns without restoring training mode, so the rest of the
epoch trains with FCN's Dropout2d layers switched off. The pull request "Return to train mode after
validation" pointed this out; the author fixed it by remembering `model.training` and calling train()
again at the end of validate() (and asserting training mode in the loop).

Source: https://github.com/wkentaro/pytorch-fcn/pull/56
Finds: train-mode-off @ drop6
"""
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe

N_CLASS = 4


class FCN32s(nn.Module):
    def __init__(self, n_class=N_CLASS):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True))
        self.fc6 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout2d()
        self.fc7 = nn.Conv2d(64, 64, 1)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout2d()
        self.score_fr = nn.Conv2d(64, n_class, 1)
        self.upscore = nn.ConvTranspose2d(n_class, n_class, 8, stride=4, padding=2, bias=False)

    def forward(self, x):
        h = self.features(x)
        h = self.drop6(self.relu6(self.fc6(h)))
        h = self.drop7(self.relu7(self.fc7(h)))
        return self.upscore(self.score_fr(h))


def cross_entropy2d(score, target, size_average=False):
    loss = F.cross_entropy(score, target, ignore_index=-1, reduction="sum")
    return loss / (target >= 0).sum() if size_average else loss


class Trainer:
    def __init__(self, model, optimizer, train_loader, val_loader, max_iter, interval_validate=None):
        self.model = model
        self.optim = optimizer
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.interval_validate = interval_validate or len(train_loader)
        self.epoch = 0
        self.iteration = 0
        self.max_iter = max_iter
        self.best_mean_iu = 0.0

    def validate(self):
        self.model.eval()                                 # the bug: training mode is never restored
        val_loss, hits, total = 0.0, 0, 0
        with torch.no_grad():
            for data, target in self.val_loader:
                score = self.model(data)
                val_loss += float(cross_entropy2d(score, target)) / len(data)
                hits += int((score.argmax(1) == target).sum())
                total += target.numel()
        self.best_mean_iu = max(self.best_mean_iu, hits / total)
        return val_loss / len(self.val_loader)

    def train_epoch(self, loader):
        self.model.train()
        for batch_idx, (data, target) in enumerate(loader):
            self.iteration = batch_idx + self.epoch * len(self.train_loader)
            if self.iteration % self.interval_validate == 0:
                self.validate()
            self.optim.zero_grad()
            score = self.model(data)
            loss = cross_entropy2d(score, target) / len(data)
            loss.backward()
            self.optim.step()
            if self.iteration >= self.max_iter:
                break

    def train(self, wrap=lambda loader: loader):
        max_epoch = int(math.ceil(1.0 * self.max_iter / len(self.train_loader)))
        for epoch in range(self.epoch, max_epoch):
            self.epoch = epoch
            self.train_epoch(wrap(self.train_loader))
            if self.iteration >= self.max_iter:
                break


def scenes(n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 32, 32, generator=g)
    labels = (images[:, 0] * N_CLASS).long().clamp(max=N_CLASS - 1)
    return TensorDataset(images, labels)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    train_loader = DataLoader(scenes(96, 1), batch_size=4, shuffle=True)
    val_loader = DataLoader(scenes(16, 2), batch_size=4)
    model = FCN32s()
    optim = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.99, weight_decay=5e-4)
    trainer = Trainer(model, optim, train_loader, val_loader, max_iter=40)
    with Probe(model, optim, run_dir=run_dir) as probe:
        trainer.train(wrap=probe.wrap)
