"""Siamese network from pytorch/examples: shared encoder on both images, concatenated features, sigmoid + BCE.

Source: pytorch/examples, siamese_network/main.py (SiameseNetwork, Adadelta lr 1.0); the torchvision
ResNet-18 backbone it uses is replaced here by a small conv encoder (torchvision is not installed).
Finds: nothing
"""
import torch
from torch import nn


class SiameseNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(32 * 2, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))
        self.sigmoid = nn.Sigmoid()
        self.fc.apply(self.init_weights)

    @staticmethod
    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            m.bias.data.fill_(0.01)

    def forward(self, input1, input2):
        both = torch.cat((self.encoder(input1), self.encoder(input2)), 1)
        return self.sigmoid(self.fc(both))


def make_batch(batch_size):
    a = torch.randn(batch_size, 1, 28, 28)
    same = torch.randint(0, 2, (batch_size,)).float()
    b = torch.where(same.view(-1, 1, 1, 1).bool(), a + 0.1 * torch.randn_like(a), torch.randn_like(a))
    return (a, b), same.unsqueeze(1)


def loss_fn(prob, same):
    return nn.functional.binary_cross_entropy(prob, same)


def make_optimizer(model):
    return torch.optim.Adadelta(model.parameters(), lr=1.0)
