"""Lightning's LitAutoEncoder: MLP encoder to a 3-number code and MLP decoder back, MSE, Adam, under Trainer.fit
with a validation pass twice an epoch and accumulate_grad_batches=2.

Source: Lightning-AI/pytorch-lightning, README.md and docs "Lightning in 15 minutes" (LitAutoEncoder: encoder
28*28 -> 64 -> 3, decoder 3 -> 64 -> 28*28, F.mse_loss on the flattened images, Adam lr 1e-3), rewritten in
our own words with synthetic MNIST-sized images (random mixtures of a few fixed patterns, so a 3-number code
can hold them) and ForgeScopeCallback recording the run.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import lightning.pytorch as L

from probes.integrations.lightning import ForgeScopeCallback

SIDE, CODE = 28, 3


class LitAutoEncoder(L.LightningModule):
    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.lr = lr
        self.encoder = nn.Sequential(nn.Linear(SIDE * SIDE, 64), nn.ReLU(), nn.Linear(64, CODE))
        self.decoder = nn.Sequential(nn.Linear(CODE, 64), nn.ReLU(), nn.Linear(64, SIDE * SIDE))

    def forward(self, images):
        return self.decoder(self.encoder(images.flatten(1)))

    def _reconstruction_loss(self, batch):
        images, _ = batch
        return F.mse_loss(self(images), images.flatten(1))

    def training_step(self, batch, batch_idx):
        loss = self._reconstruction_loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._reconstruction_loss(batch))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def fake_digits(n: int, generator: torch.Generator):
    patterns = torch.rand(CODE, 1, SIDE, SIDE, generator=generator)
    weights = torch.rand(n, CODE, generator=generator)
    images = torch.einsum("nk,kchw->nchw", weights, patterns) / CODE
    return TensorDataset(images, torch.randint(0, 10, (n,), generator=generator))


def train(run_dir):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = fake_digits(320, g)
    train_set, val_set = torch.utils.data.random_split(data, [256, 64], generator=g)
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", devices=1, accumulate_grad_batches=2,
                        val_check_interval=0.5, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[ForgeScopeCallback(run_dir=run_dir)])
    trainer.fit(LitAutoEncoder(), DataLoader(train_set, batch_size=16, shuffle=True),
                DataLoader(val_set, batch_size=32))
