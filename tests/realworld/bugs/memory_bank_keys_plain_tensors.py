"""An anomaly-detection student network's normality memory keeps its keys and values as plain random tensors.

The memory module, inserted after the first two stages of the student ResNet, attends from each feature
vector to L learned "normal" prototypes. Its `self.keys` and `self.values` are created as
`torch.randn(L, channel).to('cuda')`: not nn.Parameters (and not buffers), so they are not in
parameters(), the optimizer never updates them and they are not saved; the memory stays at its random
initialisation for the whole run. The reporter: "The parameters do not seem to be recognized ... but remain
unchanged as randomly initialized parameters"; the author: "You're right, I cant believe I missed this".

Source: https://github.com/SimonThomine/RememberingNormality/issues/7
Finds: unregistered-parameter @ memory1, unregistered-parameter @ memory2
Known miss: plain torch.randn attributes with requires_grad=False look, at run time, like any constant table; flagging them would call correct models wrong
"""
import torch
from torch import nn
from torch.nn import functional as F


class memoryModule(nn.Module):
    def __init__(self, L=50, channel=128):
        super().__init__()
        self.keys = torch.randn(L, channel)              # the bug: plain tensors (.to('cuda') in the original)
        self.values = torch.randn(L, channel)
        self.softmax = nn.Softmax(dim=1)
        self.channel = channel

    def forward(self, x):
        b, c, h, w = x.size()
        x = x.view(b, c, -1).permute(0, 2, 1)
        keys = self.keys.unsqueeze(0).expand(b, -1, -1)
        cos_sim = torch.matmul(F.normalize(keys, dim=2), F.normalize(x, dim=2).transpose(1, 2))
        sim_vec = self.softmax(cos_sim)                                       # over the L prototypes
        values = self.values.unsqueeze(0).expand(b, -1, -1)
        fnorm = torch.matmul(sim_vec.permute(0, 2, 1), values)
        return fnorm.permute(0, 2, 1).reshape(b, self.channel, h, w)


def stage(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class StudentRM(nn.Module):
    def __init__(self, embed_dim=50):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 7, 2, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.layer1 = stage(32, 32, 1)
        self.memory1 = memoryModule(L=embed_dim, channel=32)
        self.layer2 = stage(64, 64, 2)
        self.memory2 = memoryModule(L=embed_dim, channel=64)
        self.layer3 = stage(128, 128, 2)

    def forward(self, x):
        x = self.stem(x)
        a = self.layer1(x)
        b = self.layer2(torch.cat((a, self.memory1(a)), 1))
        c = self.layer3(torch.cat((b, self.memory2(b)), 1))
        return a, b, c


torch.manual_seed(1)
TEACHER = nn.ModuleList([nn.Conv2d(3, 32, 4, 4), nn.Conv2d(3, 64, 8, 8), nn.Conv2d(3, 128, 16, 16)]).eval()
TEACHER.requires_grad_(False)                              # stands in for the frozen pretrained teacher


def make_batch(batch_size: int):
    images = torch.rand(batch_size, 3, 128, 128)
    with torch.no_grad():
        targets = tuple(conv(images) for conv in TEACHER)
    return images, targets


def loss_fn(features_s, features_t):
    return sum((1 - F.cosine_similarity(s.flatten(1), t.flatten(1))).mean() for s, t in zip(features_s, features_t))
