"""An adversarially regularised graph autoencoder assigns its discriminator before super().__init__().

ARGA extends a graph autoencoder base class and stores the discriminator first, then calls
`super().__init__(encoder, decoder)`. nn.Module.__init__ has not run yet, so the assignment fails with
"cannot assign module before Module.__init__() call" (the library's own class, reported as a bug).

Source: https://github.com/pyg-team/pytorch_geometric/issues/681
Finds: missing-super-init @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

NODES, FEATURES = 16, 12


class DenseGCNConv(nn.Module):
    """A graph convolution on a dense, self-looped, symmetrically normalised adjacency matrix."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.lin = nn.Linear(c_in, c_out)

    def forward(self, x, adj):
        a = adj + torch.eye(adj.size(-1))
        d = a.sum(-1).rsqrt()
        return (d.unsqueeze(-1) * a * d.unsqueeze(-2)) @ self.lin(x)


class Encoder(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = DenseGCNConv(in_channels, 2 * out_channels)
        self.conv2 = DenseGCNConv(2 * out_channels, out_channels)

    def forward(self, x, adj):
        return self.conv2(F.relu(self.conv1(x, adj)), adj)


class Discriminator(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.fc1 = nn.Linear(in_channels, 2 * in_channels)
        self.fc2 = nn.Linear(2 * in_channels, in_channels)
        self.fc3 = nn.Linear(in_channels, 1)

    def forward(self, z):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(z)))))


class InnerProductDecoder(nn.Module):
    def forward(self, z):
        return z @ z.transpose(-1, -2)


class GAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = InnerProductDecoder() if decoder is None else decoder

    def forward(self, x, adj):
        return self.decoder(self.encoder(x, adj))       # edge logits


class ARGA(GAE):
    def __init__(self, encoder: nn.Module, discriminator: nn.Module, decoder: nn.Module | None = None):
        self.discriminator = discriminator              # the bug: assigned before super().__init__()
        super().__init__(encoder, decoder)


def build_model() -> ARGA:
    return ARGA(Encoder(FEATURES, 8), Discriminator(8))


def make_batch(batch_size: int):
    x = torch.randn(batch_size, NODES, FEATURES)
    adj = (torch.rand(batch_size, NODES, NODES) < 0.2).float()
    adj = ((adj + adj.transpose(1, 2)) > 0).float()
    return (x, adj), adj


def loss_fn(logits, adj):
    return F.binary_cross_entropy_with_logits(logits, adj)
