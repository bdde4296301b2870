"""An in-domain GAN-inversion training loop steps the discriminator without ever clearing its gradients.

The encoder-training loop zeroes the encoder's optimizer before each encoder update, but not the
discriminator's: a reader asked whether `optimizer_D.zero_grad()` was missing before the discriminator's
backward, and the author confirmed it had been forgotten. So the discriminator's `.grad` keeps the
gradients of every earlier discriminator loss — and of every encoder loss, whose backward runs through the
discriminator too — and each of its steps applies that growing sum. Rewritten with small fully connected
encoder, generator (frozen) and discriminator on random 64-dimensional "images".

Source: https://github.com/Hsintien-Ng/idinvert_pytorch-reproduced/issues/1
Finds: gradients-accumulate
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class Inversion(nn.Module):
    def __init__(self, image: int = 64, latent: int = 16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(image, 128), nn.LeakyReLU(0.2), nn.Linear(128, latent))
        self.generator = nn.Sequential(nn.Linear(latent, 128), nn.LeakyReLU(0.2), nn.Linear(128, image), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Linear(image, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))
        self.generator.requires_grad_(False)                    # the pretrained generator stays fixed


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    net = Inversion()
    opt_e = torch.optim.Adam(net.encoder.parameters(), lr=1e-4, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(net.discriminator.parameters(), lr=1e-4, betas=(0.9, 0.99))
    with Probe(net, [opt_d, opt_e], run_dir=run_dir):
        for it in range(20):
            real = torch.tanh(torch.randn(16, 64))
            # discriminator step
            fake = net.generator(net.encoder(real)).detach()
            d_loss = F.softplus(net.discriminator(fake)).mean() + F.softplus(-net.discriminator(real)).mean()
            d_loss.backward()                                   # the bug: opt_d.zero_grad() is missing
            opt_d.step()
            # encoder step
            opt_e.zero_grad()
            rec = net.generator(net.encoder(real))
            e_loss = F.mse_loss(rec, real) + 0.1 * F.softplus(-net.discriminator(rec)).mean()
            e_loss.backward()
            opt_e.step()
