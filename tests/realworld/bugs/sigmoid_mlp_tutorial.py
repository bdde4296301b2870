"""A course tutorial's FashionMNIST MLP with sigmoid activations (hidden sizes 512-256-256-128) barely trains.

The activation-function tutorial compares activations on the same four-hidden-layer MLP; with sigmoid the
gradients reaching the first layers are tiny and the network stays near chance. The reporter found the
sigmoid run stopped by early stopping after epoch 1; the author: "many continued to fail even after longer
trainings. You need to be a bit lucky that the gradients don't cancel each other out too much in the
early layers".

Source: https://github.com/phlippe/uvadlc_notebooks/issues/119
Finds: vanishing-gradients @ layers.0
"""
import torch
from torch import nn


class BaseNetwork(nn.Module):
    def __init__(self, act_fn: nn.Module = None, input_size: int = 784, num_classes: int = 10,
                 hidden_sizes=(512, 256, 256, 128)):
        super().__init__()
        act_fn = act_fn or nn.Sigmoid()
        layers, sizes = [], [input_size, *hidden_sizes]
        for i in range(1, len(sizes)):
            layers += [nn.Linear(sizes[i - 1], sizes[i]), act_fn]     # the bug: sigmoid between every layer
        layers += [nn.Linear(sizes[-1], num_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x.view(x.size(0), -1))


def make_batch(batch_size: int):
    images = torch.rand(batch_size, 1, 28, 28) * 2 - 1           # ToTensor + Normalize((0.5,), (0.5,))
    return images, torch.randint(0, 10, (batch_size,))


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
