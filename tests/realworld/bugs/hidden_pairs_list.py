"""An SNLI classifier keeps each hidden layer as a [Linear, activation] pair in a plain list of lists.

The hidden layers are built in a loop as `self.hids.append([nn.Linear(n_hid, n_hid), activation])`;
printing the model shows only the classifier, and the hidden Linear layers are missing from parameters().

Source: https://github.com/pytorch/pytorch/issues/715
Finds: unregistered-module @ (the model)
"""
import torch
from torch import nn

OPTIONS = {"n_in": 600, "n_hid": 256, "n_layers": 3, "act": "Tanh"}


class SNLINet(nn.Module):
    def __init__(self, options: dict = OPTIONS):
        super().__init__()
        self.inp = nn.Linear(options["n_in"], options["n_hid"])
        self.hids = []
        for _ in range(options["n_layers"]):
            self.hids.append([nn.Linear(options["n_hid"], options["n_hid"]),      # the bug: plain lists
                              getattr(nn, options["act"])()])
        self.classifier = nn.Linear(options["n_hid"], 3)

    def forward(self, premise_and_hypothesis):
        x = torch.tanh(self.inp(premise_and_hypothesis))
        for linear, act in self.hids:
            x = act(linear(x))
        return self.classifier(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, OPTIONS["n_in"]), torch.randint(0, 3, (batch_size,))
