"""Clean reference: a GAN with two optimizers, one for the generator and one for the discriminator
(make_optimizer returns both; train_step alternates them).

Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

NOISE = 8


class GAN(nn.Module):
    def __init__(self, features: int = 16, hidden: int = 32):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(NOISE, hidden), nn.ReLU(), nn.Linear(hidden, features))
        self.discriminator = nn.Sequential(nn.Linear(features, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self.generator(z))


def make_batch(batch_size: int):
    real = torch.randn(batch_size, 16) * 0.5 + 1.0
    return real, torch.ones(batch_size, 1)


def make_optimizer(model: GAN):
    return [torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
            torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))]


def train_step(model, batch, optimizers, loss_fn):
    real, ones = batch
    opt_g, opt_d = optimizers
    fake = model.generator(torch.randn(real.shape[0], NOISE))
    # discriminator: real -> 1, fake -> 0 (the generator is not trained by this loss)
    d_loss = (F.binary_cross_entropy_with_logits(model.discriminator(real), ones)
              + F.binary_cross_entropy_with_logits(model.discriminator(fake.detach()), torch.zeros_like(ones)))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    # generator: make the discriminator say 1
    g_loss = F.binary_cross_entropy_with_logits(model.discriminator(fake), ones)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return g_loss
