"""VGG-style CNN of Conv2d + BatchNorm2d + ReLU blocks with max pooling, trained with SGD, Nesterov momentum.

Source: PyTorch, torch.nn.Conv2d / BatchNorm2d (torch/nn/modules/conv.py, batchnorm.py).
Finds: nothing
"""
import torch
from torch import nn


def conv_bn(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvBNNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16), conv_bn(16, 16), nn.MaxPool2d(2),
                                      conv_bn(16, 32), conv_bn(32, 32), nn.MaxPool2d(2),
                                      conv_bn(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.classifier(self.features(x))


def make_batch(batch_size):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
