"""Deep cross-attention's aggregation weights come from a zero-initialised, bias-free Linear followed by ReLU.

Each layer's GRN (gated residual network) predicts how to mix the earlier hidden states:
RMSNorm -> Linear(dim, num_outputs, bias=False) with nn.init.zeros_ -> ReLU. The Linear outputs exactly
0 for every input, ReLU(0) = 0 with zero gradient, so the weights never leave zero and the aggregation is
a no-op forever (the reporter: "no symmetry-breaking and no gradient ... resulting in a null
implementation"). The author switched to a small init.

Source: https://github.com/lucidrains/deep-cross-attention/issues/2
Finds: dead-units @ grns.3.to_aggregate.2
"""
import torch
from torch import nn

VOCAB, DIM, DEPTH, SEQ = 128, 64, 6, 16


class OutputsFirst(nn.Module):
    """Rearrange('... outputs -> outputs ...')."""

    def forward(self, x):
        return x.movedim(-1, 0)


class GRN(nn.Module):
    def __init__(self, dim: int, num_outputs: int):
        super().__init__()
        linear = nn.Linear(dim, num_outputs, bias=False)
        nn.init.zeros_(linear.weight)                           # the bug: zero init, no bias, then ReLU
        self.to_aggregate = nn.Sequential(nn.RMSNorm(dim), linear, nn.ReLU(), OutputsFirst())

    def forward(self, x, hiddens):                              # hiddens: (num_outputs, B, T, D)
        weights = self.to_aggregate(x)                          # (num_outputs, B, T)
        return (weights.unsqueeze(-1) * hiddens).sum(dim=0)


class Block(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        return x + self.ff(self.norm(x))


class DCATransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList(Block(DIM) for _ in range(DEPTH))
        self.grns = nn.ModuleList(GRN(DIM, i + 1) for i in range(DEPTH))
        self.to_logits = nn.Linear(DIM, VOCAB)

    def forward(self, tokens):
        x = self.embed(tokens)
        hiddens = [x]
        for block, grn in zip(self.blocks, self.grns):
            x = x + grn(x, torch.stack(hiddens))                # mix in the earlier layers' outputs
            x = block(x)
            hiddens.append(x)
        return self.to_logits(x)


def build_model() -> DCATransformer:
    return DCATransformer()


def make_batch(batch_size: int):
    ids = torch.randint(0, VOCAB, (batch_size, SEQ + 1))
    return ids[:, :-1], ids[:, 1:]


def loss_fn(logits, targets):
    return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
