"""SNGAN on 32x32 images: a discriminator whose convs are spectrally normalised (power iteration), hinge loss.

Source: the DCGAN-style SNGAN of Miyato et al., "Spectral Normalization for GANs", as in
christiancosgrove/pytorch-spectral-normalization-gan (model.py: Generator, Discriminator; main.py: hinge loss,
Adam lr 2e-4 betas (0.0, 0.9)), narrowed and shortened, with torch.nn.utils.parametrizations.spectral_norm.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

Z, NGF, NDF = 32, 16, 16


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(Z, NGF * 4, 4, 1, 0), nn.BatchNorm2d(NGF * 4), nn.ReLU(),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1), nn.BatchNorm2d(NGF * 2), nn.ReLU(),
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1), nn.BatchNorm2d(NGF), nn.ReLU(),
            nn.ConvTranspose2d(NGF, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.model(z.view(-1, Z, 1, 1))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        sn = spectral_norm
        self.main = nn.Sequential(
            sn(nn.Conv2d(3, NDF, 3, 1, 1)), nn.LeakyReLU(0.1), sn(nn.Conv2d(NDF, NDF, 4, 2, 1)), nn.LeakyReLU(0.1),
            sn(nn.Conv2d(NDF, NDF * 2, 3, 1, 1)), nn.LeakyReLU(0.1),
            sn(nn.Conv2d(NDF * 2, NDF * 2, 4, 2, 1)), nn.LeakyReLU(0.1),
            sn(nn.Conv2d(NDF * 2, NDF * 4, 3, 1, 1)), nn.LeakyReLU(0.1))
        self.fc = sn(nn.Linear(8 * 8 * NDF * 4, 1))

    def forward(self, x):
        return self.fc(self.main(x).flatten(1)).view(-1)


class SNGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = Generator()
        self.discriminator = Discriminator()

    def forward(self, real):
        return self.discriminator(real)


def build_model():
    return SNGAN()


def make_batch(batch_size):
    return torch.rand(batch_size, 3, 32, 32) * 2 - 1, torch.zeros(batch_size)


def make_optimizer(model):
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    return [opt_d, opt_g]


def train_step(model, batch, optimizers, loss_fn):
    opt_d, opt_g = optimizers
    real, _ = batch
    z = torch.randn(real.size(0), Z)
    opt_d.zero_grad()
    d_loss = (nn.functional.relu(1.0 - model.discriminator(real)).mean()
              + nn.functional.relu(1.0 + model.discriminator(model.generator(z).detach())).mean())
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    g_loss = -model.discriminator(model.generator(z)).mean()
    g_loss.backward()
    opt_g.step()
    return d_loss
