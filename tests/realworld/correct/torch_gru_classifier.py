"""Bidirectional nn.GRU sentence classifier over variable-length, packed sequences.

Source: PyTorch, torch.nn.GRU with torch.nn.utils.rnn.pack_padded_sequence (torch/nn/utils/rnn.py).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

VOCAB, PAD, CLASSES = 150, 0, 5


class GRUClassifier(nn.Module):
    def __init__(self, emb=32, hidden=32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, emb, padding_idx=PAD)
        self.gru = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(2 * hidden, CLASSES)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)                   # h: (2, B, hidden), forward and backward final states
        return self.fc(self.dropout(torch.cat([h[0], h[1]], dim=1)))


def make_batch(batch_size):
    lengths = torch.randint(5, 21, (batch_size,))
    tokens = torch.randint(1, VOCAB, (batch_size, 20))
    tokens[torch.arange(20).expand(batch_size, 20) >= lengths.unsqueeze(1)] = PAD
    return (tokens, lengths), torch.randint(0, CLASSES, (batch_size,))


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
