"""WGAN-GP on a 2-D toy distribution: 5 critic steps per generator step, gradient penalty through autograd.grad.

Source: igul222/improved_wgan_training, gan_toy.py (8 Gaussians, CRITIC_ITERS=5, LAMBDA=0.1, Adam lr 1e-4
betas (0.5, 0.9), calc_gradient_penalty with create_graph=True), after Gulrajani et al., "Improved Training of
Wasserstein GANs".
Finds: nothing
"""
import math

import torch
from torch import autograd, nn

from probes import Probe

DIM, Z, CRITIC_ITERS, LAMBDA, BATCH, ITERS = 64, 2, 5, 0.1, 64, 8


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(Z, DIM), nn.ReLU(True), nn.Linear(DIM, DIM), nn.ReLU(True),
                                  nn.Linear(DIM, DIM), nn.ReLU(True), nn.Linear(DIM, 2))

    def forward(self, noise):
        return self.main(noise)


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(2, DIM), nn.ReLU(True), nn.Linear(DIM, DIM), nn.ReLU(True),
                                  nn.Linear(DIM, DIM), nn.ReLU(True), nn.Linear(DIM, 1))

    def forward(self, x):
        return self.main(x).view(-1)


class WGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.netG, self.netD = Generator(), Critic()


def eight_gaussians(n):
    angles = torch.randint(0, 8, (n,)).float() * (2 * math.pi / 8)
    centres = torch.stack([torch.cos(angles), torch.sin(angles)], 1) * 2 ** 0.5 * 2
    return (centres + 0.02 * torch.randn(n, 2)) / 1.414


def gradient_penalty(netD, real, fake):
    alpha = torch.rand(real.size(0), 1)
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grads = autograd.grad(netD(interpolates).sum(), interpolates, create_graph=True, retain_graph=True)[0]
    return ((grads.norm(2, dim=1) - 1) ** 2).mean() * LAMBDA


def train(run_dir):
    torch.manual_seed(0)
    model = WGAN()
    opt_d = torch.optim.Adam(model.netD.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(model.netG.parameters(), lr=1e-4, betas=(0.5, 0.9))
    with Probe(model, [opt_d, opt_g], run_dir=run_dir) as probe:
        for iteration in range(ITERS):
            model.netD.requires_grad_(True)
            for _ in range(CRITIC_ITERS):
                real = eight_gaussians(BATCH)
                with torch.no_grad():
                    fake = model.netG(torch.randn(BATCH, Z))
                opt_d.zero_grad()
                d_cost = model.netD(fake).mean() - model.netD(real).mean() + gradient_penalty(model.netD, real, fake)
                d_cost.backward()
                opt_d.step()
            model.netD.requires_grad_(False)        # no critic gradients while the generator steps
            opt_g.zero_grad()
            g_cost = -model.netD(model.netG(torch.randn(BATCH, Z))).mean()
            g_cost.backward()
            opt_g.step()
            probe.log(wasserstein=float(-d_cost))
