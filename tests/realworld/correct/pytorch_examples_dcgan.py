"""DCGAN: transposed-conv generator and strided-conv discriminator with BatchNorm, N(0, 0.02) init, two Adams.

Source: pytorch/examples, dcgan/main.py (Generator, Discriminator, weights_init, the D-then-G update).
Finds: nothing
"""
import torch
from torch import nn

NZ, NGF, NDF, NC = 16, 8, 8, 3


def weights_init(m):
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
            nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


class DCGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.netG = Generator()
        self.netD = Discriminator()
        self.apply(weights_init)

    def forward(self, real):
        return self.netD(real)


def build_model():
    return DCGAN()


def make_batch(batch_size):
    real = torch.rand(batch_size, NC, 64, 64) * 2 - 1              # images scaled to [-1, 1]
    return real, torch.ones(batch_size)


def make_optimizer(model):
    opt_d = torch.optim.Adam(model.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(model.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return [opt_d, opt_g]


def train_step(model, batch, optimizers, loss_fn):
    opt_d, opt_g = optimizers
    real, _ = batch
    b = real.size(0)
    criterion = nn.BCELoss()
    # (1) update D: maximise log(D(x)) + log(1 - D(G(z)))
    model.netD.zero_grad()
    err_real = criterion(model.netD(real), torch.ones(b))
    err_real.backward()
    fake = model.netG(torch.randn(b, NZ, 1, 1))
    err_fake = criterion(model.netD(fake.detach()), torch.zeros(b))
    err_fake.backward()
    opt_d.step()
    # (2) update G: maximise log(D(G(z)))
    model.netG.zero_grad()
    err_g = criterion(model.netD(fake), torch.ones(b))
    err_g.backward()
    opt_g.step()
    return err_real + err_fake
