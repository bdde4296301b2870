"""VQ-VAE: nearest-codebook quantisation with codebook + commitment losses and the straight-through gradient.

Source: AntixK/PyTorch-VAE, models/vq_vae.py (VectorQuantizer, ResidualLayer, VQVAE loss), after van den Oord
et al., "Neural Discrete Representation Learning".
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F


class VectorQuantizer(nn.Module):
    def __init__(self, num_embeddings=32, embedding_dim=16, beta=0.25):
        super().__init__()
        self.K, self.D, self.beta = num_embeddings, embedding_dim, beta
        self.embedding = nn.Embedding(self.K, self.D)
        self.embedding.weight.data.uniform_(-1 / self.K, 1 / self.K)

    def forward(self, latents):                    # (B, D, H, W)
        latents = latents.permute(0, 2, 3, 1).contiguous()
        flat = latents.view(-1, self.D)
        dist = (flat.pow(2).sum(1, keepdim=True) + self.embedding.weight.pow(2).sum(1)
                - 2 * flat @ self.embedding.weight.t())
        quantized = self.embedding(dist.argmin(1)).view(latents.shape)
        commitment_loss = F.mse_loss(quantized.detach(), latents)
        embedding_loss = F.mse_loss(quantized, latents.detach())
        vq_loss = commitment_loss * self.beta + embedding_loss
        quantized = latents + (quantized - latents).detach()          # straight-through estimator
        return quantized.permute(0, 3, 1, 2).contiguous(), vq_loss


class ResidualLayer(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.resblock = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU(True),
                                      nn.Conv2d(channels, channels, 1, bias=False))

    def forward(self, x):
        return x + self.resblock(x)


class VQVAE(nn.Module):
    def __init__(self, in_channels=3, hidden=32, embedding_dim=16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 4, stride=2, padding=1), nn.LeakyReLU(),
            nn.Conv2d(hidden, hidden, 4, stride=2, padding=1), nn.LeakyReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(),
            ResidualLayer(hidden), nn.LeakyReLU(),
            nn.Conv2d(hidden, embedding_dim, 1), nn.LeakyReLU())
        self.vq_layer = VectorQuantizer(embedding_dim=embedding_dim)
        self.decoder = nn.Sequential(
            nn.Conv2d(embedding_dim, hidden, 3, padding=1), nn.LeakyReLU(),
            ResidualLayer(hidden), nn.LeakyReLU(),
            nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1), nn.LeakyReLU(),
            nn.ConvTranspose2d(hidden, in_channels, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, x):
        quantized, vq_loss = self.vq_layer(self.encoder(x))
        return self.decoder(quantized), vq_loss


def build_model():
    return VQVAE()


def make_batch(batch_size):
    images = torch.rand(batch_size, 3, 32, 32) * 2 - 1
    return images, images


def loss_fn(outputs, images):
    recon, vq_loss = outputs
    return F.mse_loss(recon, images) + vq_loss


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=5e-4)
