"""Text classifier on nn.TransformerEncoder (pre-norm layers, GELU, key padding mask, masked mean pooling).

Source: PyTorch, torch.nn.TransformerEncoder / TransformerEncoderLayer (torch/nn/modules/transformer.py).
Finds: nothing
"""
import math

import torch
from torch import nn

VOCAB, PAD, CLASSES = 200, 0, 4


class EncoderClassifier(nn.Module):
    def __init__(self, d_model=32, heads=4, layers=2, max_len=64):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model, padding_idx=PAD)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.1,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.head = nn.Linear(d_model, CLASSES)
        self.scale = math.sqrt(d_model)

    def forward(self, tokens):
        pad = tokens == PAD
        x = self.embed(tokens) * self.scale + self.pos[:, : tokens.size(1)]
        x = self.encoder(x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.head(pooled)


def build_model():
    return EncoderClassifier()


def make_batch(batch_size):
    tokens = torch.randint(1, VOCAB, (batch_size, 24))
    lengths = torch.randint(8, 25, (batch_size,))
    tokens[torch.arange(24).expand(batch_size, 24) >= lengths.unsqueeze(1)] = PAD
    return tokens, torch.randint(0, CLASSES, (batch_size,))


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
