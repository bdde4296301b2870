"""SimpleNet's forward applies `F.dropout2d(out, 0.1, training=True)`, so dropout stays on after model.eval().

After the convolutional features and a global max-pool, forward() calls the functional dropout with
`training=True` written out. Functional dropout does not look at the module's mode, so a trained network
in evaluation mode still zeroes random channels and gives a different answer on every run for the same
image. The reporter suggested an nn.Dropout module defined in __init__; the author agreed and fixed it.

Source: https://github.com/Coderx7/SimpleNet/issues/2
Finds: eval-mode-missing @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

CFG = [32, 32, "M", 64, 64, "M", 96]
CLASSES = 10


class SimpleNet(nn.Module):
    def __init__(self, classes=CLASSES):
        super().__init__()
        self.features = self._make_layers()
        self.classifier = nn.Linear(CFG[-1], classes)

    def _make_layers(self):
        layers, in_ch = [], 3
        for x in CFG:
            if x == "M":
                layers += [nn.MaxPool2d(2, 2), nn.Dropout2d(p=0.1)]
            else:
                layers += [nn.Conv2d(in_ch, x, 3, padding=1), nn.BatchNorm2d(x, eps=1e-5, momentum=0.05),
                           nn.ReLU(inplace=True)]
                in_ch = x
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.features(x)
        out = F.max_pool2d(out, kernel_size=out.size()[2:])                # global max pooling
        out = F.dropout2d(out, 0.1, training=True)                         # the bug: on in eval mode too
        out = out.view(out.size(0), -1)
        return self.classifier(out)


def make_batch(batch_size: int):
    images = torch.randn(batch_size, 3, 32, 32)
    labels = (images[:, 0].mean((1, 2)) * 20).long().clamp(-4, 5) + 4
    return images, labels


def eval_step(model, batch):
    images, labels = batch
    model.eval()
    with torch.no_grad():
        predicted = model(images).argmax(1)
    model.train()
    return float((predicted == labels).float().mean())
