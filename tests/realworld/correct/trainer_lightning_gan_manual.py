"""A GAN trained with Lightning's manual optimization: two optimizers from configure_optimizers, the
discriminator then the generator stepped in each training_step, each between toggle_optimizer and
untoggle_optimizer, each zeroed right before its manual_backward.

Source: Lightning-AI/pytorch-lightning, docs "Manual Optimization" (model/manual_optimization.rst, the
SimpleGAN example: automatic_optimization = False, g_opt, d_opt = self.optimizers(), D on real and on detached
fakes, then G through D with real labels), rewritten in our own words with tiny MLPs on a 2-D ring of points,
under the `pytorch_lightning` package, and ForgeScopeCallback recording the run.
Finds: nothing
"""
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl

from probes.integrations.lightning import ForgeScopeCallback

NOISE = 8


class SimpleGAN(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.G = nn.Sequential(nn.Linear(NOISE, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
        self.D = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1), nn.Sigmoid())
        self.criterion = nn.BCELoss()
        self.automatic_optimization = False            # we step the two optimizers ourselves

    def sample_G(self, n: int):
        return self.G(torch.randn(n, NOISE, device=self.device))

    def training_step(self, batch, batch_idx):
        g_opt, d_opt = self.optimizers()
        (real,) = batch
        n = real.shape[0]
        ones = torch.ones(n, 1, device=self.device)
        zeros = torch.zeros(n, 1, device=self.device)
        fake = self.sample_G(n)

        self.toggle_optimizer(d_opt)
        d_loss = self.criterion(self.D(real), ones) + self.criterion(self.D(fake.detach()), zeros)
        d_opt.zero_grad()
        self.manual_backward(d_loss)
        d_opt.step()
        self.untoggle_optimizer(d_opt)

        self.toggle_optimizer(g_opt)
        g_loss = self.criterion(self.D(fake), ones)
        g_opt.zero_grad()
        self.manual_backward(g_loss)
        g_opt.step()
        self.untoggle_optimizer(g_opt)
        self.log_dict({"d_loss": d_loss, "g_loss": g_loss})

    def configure_optimizers(self):
        g_opt = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        return g_opt, d_opt


def ring(n: int):
    angle = torch.rand(n) * 2 * math.pi
    return torch.stack([angle.cos(), angle.sin()], 1) + 0.05 * torch.randn(n, 2)


def train(run_dir):
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(ring(640)), batch_size=32, shuffle=True)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ForgeScopeCallback(run_dir=run_dir)])
    trainer.fit(SimpleGAN(), loader)
