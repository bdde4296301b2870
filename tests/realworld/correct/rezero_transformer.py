"""ReZero transformer encoder: no LayerNorm, each residual branch scaled by a learned scalar initialised to 0.

Source: majumderb/rezero, rezero/transformer.py (RZTXEncoderLayer: src + dropout(resweight * sublayer(src))),
after Bachlechner et al., "ReZero is All You Need".
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, CLASSES = 128, 4


class RZTXEncoderLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward=64, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.resweight = nn.Parameter(torch.tensor([0.0]))

    def forward(self, src):
        attn = self.self_attn(src, src, src, need_weights=False)[0]
        src = src + self.dropout1(attn * self.resweight)
        ff = self.linear2(self.dropout(F.relu(self.linear1(src))))
        return src + self.dropout2(ff * self.resweight)


class ReZeroClassifier(nn.Module):
    def __init__(self, d_model=32, nhead=4, layers=4):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Embedding(32, d_model)
        self.layers = nn.ModuleList(RZTXEncoderLayer(d_model, nhead) for _ in range(layers))
        self.head = nn.Linear(d_model, CLASSES)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos(torch.arange(tokens.size(1)))
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(1))


def build_model():
    return ReZeroClassifier()


def make_batch(batch_size):
    tokens = torch.randint(0, VOCAB, (batch_size, 24))
    return tokens, tokens[:, 0] % CLASSES


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=5e-4)
