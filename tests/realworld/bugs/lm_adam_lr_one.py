"""A word-level LSTM language model is trained with Adam at the config's learning rate of 1.0.

The repository's config set `lr: 1.0` (a value for plain SGD) and the code used Adam with it: every step
moves each weight by about 1, so the weights are rewritten every step and the loss does not go down
"even after many epochs". With Adam's default lr=0.001 training got much better.

Source: https://github.com/rajveermalviya/language-modeling/issues/3
Finds: update-ratio @ encoder
"""
import torch
from torch import nn
from torch.nn import functional as F

NTOKEN, NINP, NHID, NLAYERS, BPTT = 500, 64, 128, 2, 16
CONFIG = {"lr": 1.0, "dropout": 0.2}


class RNNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(CONFIG["dropout"])
        self.encoder = nn.Embedding(NTOKEN, NINP)
        self.rnn = nn.LSTM(NINP, NHID, NLAYERS, dropout=CONFIG["dropout"], batch_first=True)
        self.decoder = nn.Linear(NHID, NTOKEN)

    def forward(self, tokens):
        output, _ = self.rnn(self.drop(self.encoder(tokens)))
        return self.decoder(self.drop(output))


def make_batch(batch_size: int):
    ids = torch.randint(0, NTOKEN, (batch_size, BPTT + 1))
    return ids[:, :-1], ids[:, 1:]


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, NTOKEN), targets.reshape(-1))


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=CONFIG["lr"])      # the bug: an SGD learning rate
