"""A GAN in Lightning never clears the discriminator's gradients: the generator's backward through the
discriminator and every earlier discriminator loss pile up in its `.grad`.

The report: GAN training in Lightning would not converge until the training logic was taken out of the
LightningModule. The reporter traced it to the zeroing: each optimizer's zero_grad() came only after its own
step, so the generator's loss.backward() — which runs through the discriminator — left its gradients on the
discriminator's parameters, and the discriminator's next step applied them together with its own. Rewritten
in our own words for Lightning 2 (manual optimization, since two optimizers no longer run automatically):
the discriminator's step has no d_opt.zero_grad() at all, the generator's zero_grad() comes before its
backward as usual; tiny MLPs on 2-D points.

Source: https://github.com/Lightning-AI/pytorch-lightning/issues/591
Finds: gradients-accumulate
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import lightning.pytorch as L

from probes.integrations.lightning import ForgeScopeCallback

LATENT = 8


class GAN(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(LATENT, 32), nn.ReLU(), nn.Linear(32, 2))
        self.discriminator = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        (real,) = batch
        fake = self.generator(torch.randn(real.shape[0], LATENT))

        real_score, fake_score = self.discriminator(real), self.discriminator(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_score, torch.ones_like(real_score))
                  + F.binary_cross_entropy_with_logits(fake_score, torch.zeros_like(fake_score)))
        self.manual_backward(d_loss)                   # the bug: opt_d.zero_grad() is never called
        opt_d.step()

        opt_g.zero_grad()
        fooled = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        self.manual_backward(g_loss)                   # also lands on the discriminator's .grad
        opt_g.step()
        self.log_dict({"d_loss": d_loss, "g_loss": g_loss})

    def configure_optimizers(self):
        return (torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)))


def train(run_dir):
    torch.manual_seed(0)
    points = torch.randn(640, 2) * torch.tensor([0.5, 2.0]) + torch.tensor([1.0, -1.0])
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[ForgeScopeCallback(run_dir=run_dir)])
    trainer.fit(GAN(), DataLoader(TensorDataset(points), batch_size=32, shuffle=True))
