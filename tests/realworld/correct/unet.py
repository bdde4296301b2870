"""U-Net for segmentation: DoubleConv blocks, max-pool downs, bilinear ups with skip concatenation, CE + Dice loss.

Source: milesial/Pytorch-UNet, unet/unet_parts.py and unet/unet_model.py (UNet with bilinear=True),
train.py (RMSprop, cross-entropy plus multiclass Dice), utils/dice_score.py.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

CLASSES = 3


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, mid=None):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(cin, cout, cin // 2)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy, dx = x2.size(2) - x1.size(2), x2.size(3) - x1.size(3)
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet(nn.Module):
    def __init__(self, n_channels=3, n_classes=CLASSES, base=8):
        super().__init__()
        self.inc = DoubleConv(n_channels, base)
        self.down1 = Down(base, base * 2)
        self.down2 = Down(base * 2, base * 4)
        self.down3 = Down(base * 4, base * 8 // 2)        # factor 2 with bilinear upsampling
        self.up1 = Up(base * 8, base * 4 // 2)
        self.up2 = Up(base * 4, base * 2 // 2)
        self.up3 = Up(base * 2, base)
        self.outc = nn.Conv2d(base, n_classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(x4, x3)
        x = self.up2(x, x2)
        x = self.up3(x, x1)
        return self.outc(x)


def build_model():
    return UNet()


def make_batch(batch_size):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, CLASSES, (batch_size, 32, 32))


def dice_loss(probs, onehot, eps=1e-6):
    inter = 2 * (probs * onehot).sum(dim=(-1, -2))
    total = probs.sum(dim=(-1, -2)) + onehot.sum(dim=(-1, -2))
    return 1 - ((inter + eps) / (total + eps)).mean()


def loss_fn(logits, masks):
    onehot = F.one_hot(masks, CLASSES).permute(0, 3, 1, 2).float()
    return F.cross_entropy(logits, masks) + dice_loss(F.softmax(logits, dim=1), onehot)


def make_optimizer(model):
    return torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.999)
