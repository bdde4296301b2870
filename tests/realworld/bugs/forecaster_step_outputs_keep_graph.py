"""A forecasting library's training step appends its log dict, predictions and loss still attached, to a list.

BaseModel.step() returned a log dict holding the loss and the network output, and training_step() appended
it to `self.training_step_outputs` for the epoch-end metrics. None of those tensors were detached, so each
list entry kept its batch's whole computation graph (and on the GPU its activations) alive until the epoch
ended: memory grew with every batch. The merged fix detached the tensors before appending them and moved
the predictions to the CPU.

Source: https://github.com/sktime/pytorch-forecasting/pull/1924
Finds: memory-growth
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe

ENCODER, DECODER, FEATURES, HIDDEN = 48, 12, 4, 64


class RecurrentForecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(FEATURES, HIDDEN, num_layers=2, batch_first=True)
        self.decoder = nn.LSTM(FEATURES - 1, HIDDEN, num_layers=2, batch_first=True)
        self.output_layer = nn.Linear(HIDDEN, 3)                    # quantiles 0.1, 0.5, 0.9
        self.training_step_outputs = []

    def forward(self, encoder_cont, decoder_cont):
        _, state = self.encoder(encoder_cont)
        out, _ = self.decoder(decoder_cont, state)
        return self.output_layer(out)

    def step(self, batch):
        encoder_cont, decoder_cont, target = batch
        prediction = self(encoder_cont, decoder_cont)
        errors = target.unsqueeze(-1) - prediction
        q = torch.tensor([0.1, 0.5, 0.9])
        loss = torch.max(q * errors, (q - 1) * errors).mean()      # quantile loss
        log = {"loss": loss, "prediction": prediction, "target": target,
               "mae": F.l1_loss(prediction[..., 1], target)}
        return log

    def training_step(self, batch):
        log = self.step(batch)
        self.training_step_outputs.append(log)                      # the bug: tensors kept with their graphs
        return log["loss"]

    def on_train_epoch_end(self):
        mae = torch.stack([o["mae"] for o in self.training_step_outputs]).mean()
        self.training_step_outputs.clear()
        return float(mae)


def series(n):
    t = torch.arange(ENCODER + DECODER).float()
    phase = torch.rand(n, 1) * 6.28
    level = torch.sin(t / 6 + phase) + 0.1 * torch.randn(n, ENCODER + DECODER)
    covariates = torch.stack([torch.sin(t / 24).expand(n, -1), torch.cos(t / 24).expand(n, -1),
                              (t / 60).expand(n, -1)], dim=-1)
    encoder_cont = torch.cat([level[:, :ENCODER, None], covariates[:, :ENCODER]], dim=-1)
    return TensorDataset(encoder_cont, covariates[:, ENCODER:], level[:, ENCODER:])


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    loader = DataLoader(series(320), batch_size=8, shuffle=True)
    model = RecurrentForecaster()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for batch in probe.wrap(loader):                            # one epoch of 40 batches
            loss = model.training_step(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        probe.log(epoch_mae=model.on_train_epoch_end())
