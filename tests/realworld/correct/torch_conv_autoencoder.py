"""Convolutional autoencoder: strided Conv2d encoder, ConvTranspose2d decoder, sigmoid output, MSE reconstruction.

Source: PyTorch, torch.nn.Conv2d / ConvTranspose2d (torch/nn/modules/conv.py).
Finds: nothing
"""
import torch
from torch import nn


class ConvAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(32, 64, 7))
        self.decoder = nn.Sequential(nn.ConvTranspose2d(64, 32, 7), nn.ReLU(),
                                     nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                     nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),
                                     nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def make_batch(batch_size):
    images = torch.rand(batch_size, 1, 28, 28)
    return images, images


def loss_fn(recon, images):
    return nn.functional.mse_loss(recon, images)


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
