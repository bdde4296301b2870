"""Two-layer nn.LSTM word-level language model with dropout between layers, trained on next-token prediction.

Source: PyTorch, torch.nn.LSTM (torch/nn/modules/rnn.py).
Finds: nothing
"""
import torch
from torch import nn

VOCAB = 200


class LSTMLanguageModel(nn.Module):
    def __init__(self, emb=32, hidden=64, layers=2, dropout=0.2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, emb)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(emb, hidden, num_layers=layers, dropout=dropout, batch_first=True)
        self.out = nn.Linear(hidden, VOCAB)

    def forward(self, tokens):
        h, _ = self.lstm(self.drop(self.embed(tokens)))
        return self.out(self.drop(h))


def make_batch(batch_size):
    seq = torch.randint(0, VOCAB, (batch_size, 33))
    return seq[:, :-1], seq[:, 1:]


def loss_fn(logits, targets):
    return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-3)
