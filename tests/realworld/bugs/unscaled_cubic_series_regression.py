"""Predicting the next 20 values of a cubic from its first 80, on raw values in the hundreds: the loss explodes.

The learner fed the raw series y = x^3 + x^2 + x (x from -10 to 10, values up to about a thousand) into one
linear layer initialised with N(0, 3) weights, trained with plain gradient descent (lr=1e-6) on a summed
squared error. Every step the loss grew about a hundredfold (1.3e9, 1.8e11, 2.6e13, ...): with inputs this
large, that learning rate overshoots further every step.

Source: https://web-offline.shuffle-on.com/content/stats.stackexchange.com_en_all_2024-10/questions/594738/loss-is-growing-between-epochs-in-simple-model
Finds: exploding-gradients @ fc
"""
import torch
from torch import nn

x = torch.linspace(-10, 10, 100)
y = x ** 3 + x ** 2 + x                                         # the bug: raw values, never standardised


class SeriesForecaster(nn.Module):
    def __init__(self, past: int = 80, future: int = 20):
        super().__init__()
        self.fc = nn.Linear(past, future)
        nn.init.normal_(self.fc.weight, 0.0, 3.0)
        nn.init.normal_(self.fc.bias, 0.0, 3.0)

    def forward(self, params):
        return self.fc(params)


def make_batch(batch_size: int):
    return y[:80].expand(batch_size, 80).clone(), y[80:].expand(batch_size, 20).clone()


def loss_fn(preds, targets):
    return nn.functional.mse_loss(preds, targets, reduction="sum")


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=1e-6)
