"""The pytorch/examples VAE: MLP encoder to (mu, logvar), reparameterisation, Bernoulli decoder, BCE + KL loss.

Source: pytorch/examples, vae/main.py (VAE, loss_function).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def make_batch(batch_size):
    images = (torch.rand(batch_size, 1, 28, 28) > 0.7).float()      # binarised digit-like images
    return images, images


def loss_fn(outputs, x):
    recon, mu, logvar = outputs
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kld) / x.size(0)


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
