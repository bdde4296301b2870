"""Word-level language model on nn.TransformerEncoder with a causal (square subsequent) mask and sinusoidal positions.

Source: PyTorch, torch.nn.TransformerEncoder with nn.Transformer.generate_square_subsequent_mask, as in the
TransformerModel of pytorch/tutorials beginner_source/transformer_tutorial.py.
Finds: nothing
"""
import math

import torch
from torch import nn

VOCAB = 180


class TransformerLM(nn.Module):
    def __init__(self, d_model=32, heads=4, d_hid=64, layers=2, dropout=0.2, max_len=64):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, d_model)
        position = torch.arange(max_len).unsqueeze(1)
        freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
        self.register_buffer("pe", pe)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, heads, d_hid, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.decoder = nn.Linear(d_model, VOCAB)
        self.d_model = d_model
        self.embedding.weight.data.uniform_(-0.1, 0.1)
        self.decoder.bias.data.zero_()
        self.decoder.weight.data.uniform_(-0.1, 0.1)

    def forward(self, src):
        mask = nn.Transformer.generate_square_subsequent_mask(src.size(1))
        x = self.dropout(self.embedding(src) * math.sqrt(self.d_model) + self.pe[: src.size(1)])
        return self.decoder(self.encoder(x, mask=mask, is_causal=True))


def make_batch(batch_size):
    seq = torch.randint(0, VOCAB, (batch_size, 33))
    return seq[:, :-1], seq[:, 1:]


def loss_fn(logits, targets):
    return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def train_step(model, batch, optimizer, loss_fn):
    inputs, targets = batch
    loss = loss_fn(model(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    return loss


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=5.0)
