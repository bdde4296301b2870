"""MobileNetV2: inverted residual blocks (1x1 expand, 3x3 depthwise, linear 1x1 projection) with ReLU6 and
BatchNorm, residual only where stride 1 keeps the width, width rounded to multiples of 8.

Source: pytorch/vision, torchvision/models/mobilenetv2.py (InvertedResidual, _make_divisible, MobileNetV2 with
its kaiming_normal fan_out / N(0, 0.01) init), a reduced inverted_residual_setting for 32x32 inputs; SGD with
momentum 0.9 and weight decay 4e-5 as in the torchvision classification reference.
Finds: nothing
"""
import torch
from torch import nn


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn_act(inp, out, kernel=3, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [conv_bn_act(inp, hidden, kernel=1)] if expand_ratio != 1 else []
        layers += [conv_bn_act(hidden, hidden, stride=stride, groups=hidden),     # depthwise
                   conv_bn_act(hidden, oup, kernel=1, act=False)]                 # linear bottleneck
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=10, width_mult=0.5):
        super().__init__()
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 1, 2]]     # t, c, n, s
        inp = make_divisible(32 * width_mult)
        last = make_divisible(256 * max(1.0, width_mult))
        features = [conv_bn_act(3, inp, stride=1)]                   # stride 1 stem for 32x32 images
        for t, c, n, s in setting:
            out = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(conv_bn_act(inp, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def build_model():
    return MobileNetV2()


def make_batch(batch_size):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=4e-5)
