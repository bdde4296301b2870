"""Temporal Convolutional Network: dilated causal Conv1d blocks (chomped padding) under weight normalisation.

Source: locuslab/TCN, TCN/tcn.py (Chomp1d, TemporalBlock, TemporalConvNet) and TCN/mnist_pixel/model.py
(last time step -> Linear); weight_norm from torch.nn.utils.parametrizations.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class Chomp1d(nn.Module):
    def __init__(self, chomp_size):
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, : -self.chomp_size].contiguous()     # drop the right padding: causal


def causal_conv(cin, cout, k, dilation):
    conv = nn.Conv1d(cin, cout, k, padding=(k - 1) * dilation, dilation=dilation)
    nn.init.normal_(conv.weight, 0, 0.01)
    return weight_norm(conv)


class TemporalBlock(nn.Module):
    def __init__(self, n_inputs, n_outputs, kernel_size, dilation, dropout=0.05):
        super().__init__()
        pad = (kernel_size - 1) * dilation
        self.net = nn.Sequential(causal_conv(n_inputs, n_outputs, kernel_size, dilation), Chomp1d(pad), nn.ReLU(),
                                 nn.Dropout(dropout), causal_conv(n_outputs, n_outputs, kernel_size, dilation),
                                 Chomp1d(pad), nn.ReLU(), nn.Dropout(dropout))
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        if self.downsample is not None:
            nn.init.normal_(self.downsample.weight, 0, 0.01)
        self.relu = nn.ReLU()

    def forward(self, x):
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(self.net(x) + res)


class TCN(nn.Module):
    def __init__(self, input_size=1, output_size=10, channels=(16, 16, 16), kernel_size=5):
        super().__init__()
        layers, prev = [], input_size
        for i, ch in enumerate(channels):
            layers.append(TemporalBlock(prev, ch, kernel_size, dilation=2 ** i))
            prev = ch
        self.tcn = nn.Sequential(*layers)
        self.linear = nn.Linear(prev, output_size)

    def forward(self, x):                            # x: (B, channels, time)
        return self.linear(self.tcn(x)[:, :, -1])


def build_model():
    return TCN()


def make_batch(batch_size):
    return torch.randn(batch_size, 1, 64), torch.randint(0, 10, (batch_size,))


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
