"""A translation toolkit run with `-optim adam` keeps the default learning rate of 1, meant for SGD.

The reporter trained the demo model with Adam and saw perplexity stay at a high constant with erratic
accuracy; the maintainer: "you need to set the learning_rate to 0.001, by default it's 1 because default
optim is sgd".

Source: https://github.com/OpenNMT/OpenNMT-py/issues/805
Finds: update-ratio @ encoder.embeddings
"""
import torch
from torch import nn
from torch.nn import functional as F

SRC_VOCAB, TGT_VOCAB, EMB, HID, SRC_LEN, TGT_LEN = 300, 300, 64, 128, 14, 12
OPT = {"optim": "adam", "learning_rate": 1.0}                  # -optim adam, -learning_rate left at default


class RNNEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(SRC_VOCAB, EMB)
        self.rnn = nn.LSTM(EMB, HID, batch_first=True)

    def forward(self, src):
        return self.rnn(self.embeddings(src))


class RNNDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(TGT_VOCAB, EMB)
        self.rnn = nn.LSTM(EMB, HID, batch_first=True)

    def forward(self, tgt, state):
        out, _ = self.rnn(self.embeddings(tgt), state)
        return out


class NMTModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = RNNEncoder()
        self.decoder = RNNDecoder()
        self.generator = nn.Linear(HID, TGT_VOCAB)

    def forward(self, src, tgt_in):
        _, state = self.encoder(src)
        return self.generator(self.decoder(tgt_in, state))


def build_model() -> NMTModel:
    return NMTModel()


def make_batch(batch_size: int):
    src = torch.randint(0, SRC_VOCAB, (batch_size, SRC_LEN))
    tgt = torch.randint(0, TGT_VOCAB, (batch_size, TGT_LEN + 1))
    return (src, tgt[:, :-1]), tgt[:, 1:]


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, TGT_VOCAB), targets.reshape(-1))


def make_optimizer(model):
    if OPT["optim"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=OPT["learning_rate"], betas=(0.9, 0.999))   # the bug
    return torch.optim.SGD(model.parameters(), lr=OPT["learning_rate"])
