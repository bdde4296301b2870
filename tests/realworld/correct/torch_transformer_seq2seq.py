"""Seq2seq translation model on nn.Transformer: causal target mask, padding masks, teacher forcing, label smoothing.

Source: PyTorch, torch.nn.Transformer (torch/nn/modules/transformer.py) as used by the Seq2SeqTransformer of
pytorch/tutorials beginner_source/translation_transformer.py.
Finds: nothing
"""
import math

import torch
from torch import nn

SRC_VOCAB, TGT_VOCAB = 150, 120
PAD, BOS, EOS = 1, 2, 3


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=128):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq)
        self.register_buffer("table", table)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(x + self.table[: x.size(1)])


class Seq2SeqTransformer(nn.Module):
    def __init__(self, d_model=32, heads=4, layers=2):
        super().__init__()
        self.src_embed = nn.Embedding(SRC_VOCAB, d_model)
        self.tgt_embed = nn.Embedding(TGT_VOCAB, d_model)
        self.pos = PositionalEncoding(d_model)
        self.transformer = nn.Transformer(d_model, heads, layers, layers, dim_feedforward=64, dropout=0.1,
                                          batch_first=True)
        self.generator = nn.Linear(d_model, TGT_VOCAB)
        self.scale = math.sqrt(d_model)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src, tgt_in):
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1), dtype=torch.bool)
        out = self.transformer(self.pos(self.src_embed(src) * self.scale),
                               self.pos(self.tgt_embed(tgt_in) * self.scale),
                               tgt_mask=causal, src_key_padding_mask=src == PAD,
                               tgt_key_padding_mask=tgt_in == PAD, memory_key_padding_mask=src == PAD)
        return self.generator(out)


def build_model():
    return Seq2SeqTransformer()


def make_batch(batch_size):
    src = torch.randint(4, SRC_VOCAB, (batch_size, 18))
    src[:, -1] = EOS
    tgt = torch.randint(4, TGT_VOCAB, (batch_size, 15))
    tgt[:, 0], tgt[:, -1] = BOS, EOS
    tgt[: batch_size // 2, 11:] = PAD
    # teacher forcing: the decoder reads tgt[:-1] and predicts tgt[1:]
    return (src, tgt[:, :-1]), tgt[:, 1:]


def loss_fn(logits, targets):
    return nn.functional.cross_entropy(logits.reshape(-1, TGT_VOCAB), targets.reshape(-1), ignore_index=PAD,
                                       label_smoothing=0.1)


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
