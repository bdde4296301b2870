"""The pytorch/examples MNIST CNN: two convs, max-pool, dropout, log-softmax + NLL, Adadelta at lr 1.0.

Source: pytorch/examples, mnist/main.py (Net, train, Adadelta + StepLR).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def make_batch(batch_size):
    # MNIST-sized digits, normalised with the dataset's mean/std as the example's transform does
    images = (torch.rand(batch_size, 1, 28, 28) - 0.1307) / 0.3081
    return images, torch.randint(0, 10, (batch_size,))


def loss_fn(log_probs, targets):
    return F.nll_loss(log_probs, targets)


def make_optimizer(model):
    return torch.optim.Adadelta(model.parameters(), lr=1.0)
