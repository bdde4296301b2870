"""A training step calls only lr_scheduler.step(), assuming the scheduler steps the optimizer it wraps.

The reporter wondered "why the hell nothing works" until they compared the weights between steps: a
scheduler looks like a wrapper over the optimizer, but scheduler.step() only changes the learning rate;
without optimizer.step() the weights never move.

Source: https://github.com/pytorch/pytorch/issues/3814
Finds: optimizer-not-stepping @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

scheduler = None


class Classifier(nn.Module):
    def __init__(self, features: int = 20, hidden: int = 64, classes: int = 5):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def make_batch(batch_size: int):
    x = torch.randn(batch_size, 20)
    return x, (x[:, :5].argmax(dim=1))


def make_optimizer(model):
    global scheduler
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.99)
    return optimizer


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    scheduler.step()                                            # the bug: optimizer.step() is never called
    return loss
