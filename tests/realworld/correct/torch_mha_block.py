"""Pre-norm self-attention block on nn.MultiheadAttention (key padding mask) + MLP, two blocks, token tagger.

Source: PyTorch, torch.nn.MultiheadAttention (torch/nn/modules/activation.py).
Finds: nothing
"""
import torch
from torch import nn

VOCAB, PAD, TAGS = 128, 0, 6


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=0.1, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(0.1))

    def forward(self, x, pad):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class Tagger(nn.Module):
    def __init__(self, dim=32, heads=4, depth=2, max_len=32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim, padding_idx=PAD)
        self.pos = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, TAGS)

    def forward(self, tokens):
        pad = tokens == PAD
        x = self.embed(tokens) + self.pos(torch.arange(tokens.size(1)))
        for block in self.blocks:
            x = block(x, pad)
        return self.head(self.norm(x))


def build_model():
    return Tagger()


def make_batch(batch_size):
    tokens = torch.randint(1, VOCAB, (batch_size, 20))
    tokens[: batch_size // 2, 15:] = PAD
    tags = torch.randint(0, TAGS, (batch_size, 20)).masked_fill(tokens == PAD, -100)
    return tokens, tags


def loss_fn(logits, tags):
    return nn.functional.cross_entropy(logits.reshape(-1, TAGS), tags.reshape(-1), ignore_index=-100)


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
