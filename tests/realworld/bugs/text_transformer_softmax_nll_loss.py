"""A Transformer text classifier returns softmax probabilities and trains them with nn.NLLLoss: negative loss.

The collection of text-classification models has a Transformer encoder whose forward ends in `nn.Softmax()`
over the last position's class scores, while train.py builds `nn.NLLLoss()` for it. NLLLoss expects
log-probabilities and returns minus the entry of the true class, so on probabilities it computes -p: the
reporter noticed the training loss is always negative. Minimising -p is not the likelihood objective (its
gradient vanishes as p nears 0 or 1 instead of growing for confident mistakes).

Source: https://github.com/AnubhavGupta3377/Text-Classification-Models-Pytorch/issues/9
Finds: loss-input-mismatch
"""
import math

import torch
from torch import nn

from probes import Probe

VOCAB, CLASSES, SEQ, D_MODEL = 300, 4, 20, 32


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout, max_len=64):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return self.dropout(x + self.pe[:, :x.size(1)])


class Transformer(nn.Module):
    def __init__(self, h=4, n_layers=1, dropout=0.1, d_ff=64):
        super().__init__()
        self.src_embed = nn.Sequential(nn.Embedding(VOCAB, D_MODEL), PositionalEncoding(D_MODEL, dropout))
        layer = nn.TransformerEncoderLayer(D_MODEL, h, d_ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers)
        self.fc = nn.Linear(D_MODEL, CLASSES)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):                                   # x: (seq_len, batch), as torchtext batches it
        encoded = self.encoder(self.src_embed(x.permute(1, 0)))
        return self.softmax(self.fc(encoded[:, -1, :]))


def train(run_dir):
    torch.manual_seed(0)
    model = Transformer()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    loss_op = nn.NLLLoss()
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for i in range(30):
            y = torch.randint(0, CLASSES, (16,))
            x = torch.randint(CLASSES, VOCAB, (SEQ, 16))
            x[-3] = y                                        # a class word near the end of each sentence
            optimizer.zero_grad()
            y_pred = model(x)
            loss = loss_op(y_pred, y)                        # the bug: probabilities, not log-probabilities
            loss.backward()
            optimizer.step()
