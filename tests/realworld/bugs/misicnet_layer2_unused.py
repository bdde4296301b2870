"""A hyperspectral unmixing network defines layer2 in its architecture but its forward never calls it.

The unmixing benchmark's MiSiCNet builds layer1, layer2, a 1x1 skip branch, layer3 and layer4 (reflection
pad, conv, BatchNorm, LeakyReLU) and a bias-free linear decoder whose weights are the endmembers, then trains
all of `self.parameters()` with Adam. Its forward goes layer1 -> concat with the skip branch -> layer3 ->
layer4 -> softmax -> decoder: layer2 is never used. The reporter asked whether that was intended; its weights
sit in the optimizer and never receive a gradient.

Source: https://github.com/inria-thoth/HySUPP/issues/3
Finds: param-unreached @ layer2
"""
import torch
from torch import nn

from probes import Probe

L, P, H, W = 16, 3, 8, 8                                   # bands, endmembers, lines, samples
WIDTH = 32                                                 # 256 in the original


def block(c_in, c_out, k):
    return nn.Sequential(nn.ReflectionPad2d((k - 1) // 2), nn.Conv2d(c_in, c_out, k), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1, inplace=True))


class MiSiCNet(nn.Module):
    def __init__(self, lambd=0.1):
        super().__init__()
        self.lambd = lambd
        self.layer1 = block(L, WIDTH, 3)
        self.layer2 = block(WIDTH, WIDTH, 3)                # the bug: built and optimised, never called
        self.layerskip = block(L, 4, 1)
        self.layer3 = block(WIDTH + 4, WIDTH, 3)
        self.layer4 = block(WIDTH, P, 3)
        self.decoder = nn.Linear(P, L, bias=False)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x1 = self.layer1(x)
        xcat = torch.cat([x1, self.layerskip(x)], dim=1)
        abund = self.softmax(self.layer4(self.layer3(xcat)))
        abund = abund.squeeze(0).view(P, H * W).t()
        return abund, self.decoder(abund)

    def loss(self, target, output):
        fit = 0.5 * torch.linalg.norm(target - output, "fro") ** 2
        mean = target.mean(0, keepdim=True).t()
        return fit + self.lambd * torch.linalg.norm(self.decoder.weight - mean, "fro") ** 2


def train(run_dir):
    torch.manual_seed(0)
    endmembers = torch.rand(L, P)
    abundances = torch.softmax(torch.randn(H * W, P) * 2, dim=1)
    Y = abundances @ endmembers.t()                         # (pixels, bands)
    model = MiSiCNet()
    model.decoder.weight.data = endmembers + 0.05 * torch.randn(L, P)      # the SiVM initialisation
    noisy_input = torch.rand(1, L, H, W)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Probe(model, optimizer, run_dir=run_dir):
        for ii in range(30):
            optimizer.zero_grad()
            abund, output = model(noisy_input)
            loss = model.loss(Y, output)
            loss.backward()
            optimizer.step()
            model.decoder.weight.data.clamp_(0, 1)          # keep the endmembers physical
