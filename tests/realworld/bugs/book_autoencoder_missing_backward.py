"""A textbook's MNIST autoencoder notebook zeroes the gradients, computes the loss and steps, with no backward().

The embedding chapter of a deep-learning book builds an encoder (784-1000-500-250-2, each Linear followed by
BatchNorm1d and a sigmoid) and a mirror-image decoder that unflattens back to 1x28x28, with MSELoss and Adam
(lr 0.001). Its training cell runs `optimizer.zero_grad()`, the encoder, the decoder, the loss and
`optimizer.step()` for five epochs. The reader found the model did not train at all: `loss.backward()` is
missing, so the optimizer steps on gradients that were never computed. (The optimizer is also built over the
decoder's parameters only, as in the notebook.) The layers are narrower here and the digits are random.

Source: https://github.com/darksigma/Fundamentals-of-Deep-Learning-Book/issues/9
Finds: optimizer-not-stepping
"""
import math

import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


def dense(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, n_out, bias=True), nn.BatchNorm1d(n_out), nn.Sigmoid())


class Encoder(nn.Module):
    def __init__(self, n_in, n_hidden_1, n_hidden_2, n_hidden_3, n_out):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Flatten(), dense(n_in, n_hidden_1))
        self.layer2 = dense(n_hidden_1, n_hidden_2)
        self.layer3 = dense(n_hidden_2, n_hidden_3)
        self.layer4 = dense(n_hidden_3, n_out)

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class Decoder(nn.Module):
    def __init__(self, n_in, n_hidden_1, n_hidden_2, n_hidden_3, n_out):
        super().__init__()
        side = math.floor(math.sqrt(n_out))
        self.layer1 = dense(n_in, n_hidden_1)
        self.layer2 = dense(n_hidden_1, n_hidden_2)
        self.layer3 = dense(n_hidden_2, n_hidden_3)
        self.layer4 = nn.Sequential(dense(n_hidden_3, n_out), nn.Unflatten(1, torch.Size([1, side, side])))

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class Autoencoder(nn.Module):
    """The notebook's two global modules, held together for the probe."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder(784, 128, 64, 32, 2)
        self.decoder = Decoder(2, 32, 64, 128, 784)


def train(run_dir):
    torch.manual_seed(0)
    model = Autoencoder()
    encoder, decoder = model.encoder, model.decoder
    loss_fn = nn.MSELoss()
    optimizer = optim.Adam(decoder.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-08)
    images = torch.rand(320, 1, 28, 28)
    trainloader = DataLoader(TensorDataset(images, torch.zeros(320)), batch_size=32, shuffle=True)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(3):
            for input, labels in probe.wrap(trainloader):
                optimizer.zero_grad()
                code = encoder(input)
                output = decoder(code)
                loss = loss_fn(output, input)
                optimizer.step()                             # the bug: no loss.backward() before the step
