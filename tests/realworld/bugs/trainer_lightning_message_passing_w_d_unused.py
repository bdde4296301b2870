"""A molecular property model's message-passing block builds its extra-descriptor layer W_d even when there
are no extra descriptors, so W_d is in the optimizer and never in the loss.

The report: training the example model (`chemprop train` on the regression example data) with Lightning
failed with "your LightningModule has parameters that were not used in producing the loss returned by
training_step". The fix names them: `message_passing.W_d.weight` and `.bias`, a linear layer meant to mix in
additional atom descriptors, were created when the descriptor size d_vd is 0, and used only when descriptors
are given; it is now built only then. Rewritten in our own words as a small message-passing network on dense
synthetic graphs (no RDKit), trained by a Lightning Trainer on one CPU, where no DDP error stops it.

Source: https://github.com/chemprop/chemprop/issues/853 (fixed by https://github.com/chemprop/chemprop/pull/883)
Finds: param-unreached @ message_passing.W_d
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import lightning.pytorch as L

from probes.integrations.lightning import ForgeScopeCallback

ATOMS, ATOM_FEATURES = 12, 10


class MessagePassing(nn.Module):
    def __init__(self, d_v: int = ATOM_FEATURES, d_h: int = 64, d_vd: int = 0, depth: int = 3):
        super().__init__()
        self.depth = depth
        self.W_i = nn.Linear(d_v, d_h, bias=False)
        self.W_h = nn.Linear(d_h, d_h, bias=False)
        self.W_o = nn.Linear(d_v + d_h, d_h)
        self.W_d = nn.Linear(d_h + d_vd, d_h + d_vd)       # the bug: built even when d_vd == 0

    def forward(self, V, A, V_d=None):
        H0 = self.W_i(V)
        H = F.relu(H0)
        for _ in range(self.depth - 1):
            M = A @ H                                       # sum of the neighbours' hidden states
            H = F.relu(H0 + self.W_h(M))
        H = F.relu(self.W_o(torch.cat([V, A @ H], dim=-1)))
        if V_d is not None:                                 # only extra descriptors ever reach W_d
            H = F.relu(self.W_d(torch.cat([H, V_d], dim=-1)))
        return H


class MPNN(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.message_passing = MessagePassing()
        self.predictor = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, V, A):
        H = self.message_passing(V, A)
        return self.predictor(H.mean(1)).squeeze(-1)          # mean over atoms, one value per molecule

    def training_step(self, batch, batch_idx):
        V, A, y = batch
        loss = F.mse_loss(self(V, A), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def molecules(n: int):
    V = (torch.rand(n, ATOMS, ATOM_FEATURES) < 0.3).float()            # one-hot-ish atom features
    upper = (torch.rand(n, ATOMS, ATOMS) < 0.2).float().triu(1)
    A = upper + upper.transpose(1, 2)                                   # undirected bonds
    y = V[..., 0].sum(1) * 0.3 + A.sum((1, 2)) * 0.05                   # a learnable "property"
    return TensorDataset(V, A, (y - y.mean()) / y.std())


def train(run_dir):
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[ForgeScopeCallback(run_dir=run_dir)])
    trainer.fit(MPNN(), DataLoader(molecules(320), batch_size=16, shuffle=True))
