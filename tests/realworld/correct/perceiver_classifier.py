"""Perceiver: a learned latent array cross-attends to Fourier-feature-augmented inputs, then latent self-attention
blocks; the cross-attention and latent weights are shared across repeats, mean-pooled latents feed the head.

Source: lucidrains/perceiver-pytorch, perceiver_pytorch/perceiver_pytorch.py (fourier_encode, PreNorm with a
context norm, Attention, GEGLU FeedForward, Perceiver with weight_tie_layers=True), after Jaegle et al.,
"Perceiver: General Perception with Iterative Attention".
Finds: nothing
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

CHANNELS, SIZE, BANDS, MAX_FREQ = 3, 12, 4, 10.0
LATENTS, LATENT_DIM, CROSS_HEADS, LATENT_HEADS, DIM_HEAD, DEPTH, SELF_PER_CROSS = 16, 32, 1, 4, 8, 2, 1
INPUT_DIM = CHANNELS + 2 * (2 * BANDS + 1)


def fourier_encode(x, max_freq, num_bands):
    x = x.unsqueeze(-1)
    scales = torch.linspace(1.0, max_freq / 2, num_bands)
    x_scaled = x * scales * math.pi
    return torch.cat([x_scaled.sin(), x_scaled.cos(), x], dim=-1)


class PreNorm(nn.Module):
    def __init__(self, dim, fn, context_dim=None):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None

    def forward(self, x, context=None):
        x = self.norm(x)
        if self.norm_context is not None:
            return self.fn(x, context=self.norm_context(context))
        return self.fn(x)


class GEGLU(nn.Module):
    def forward(self, x):
        x, gates = x.chunk(2, dim=-1)
        return x * F.gelu(gates)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult * 2), GEGLU(), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    def __init__(self, query_dim, context_dim=None, heads=4, dim_head=8):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim or query_dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, query_dim)

    def forward(self, x, context=None):
        context = x if context is None else context
        q, (k, v) = self.to_q(x), self.to_kv(context).chunk(2, dim=-1)
        b, h = x.size(0), self.heads
        q, k, v = (t.reshape(b, -1, h, t.size(-1) // h).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, -1, q.size(-1) * h))


class Perceiver(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(LATENTS, LATENT_DIM))
        self.cross_attn = PreNorm(LATENT_DIM, Attention(LATENT_DIM, INPUT_DIM, CROSS_HEADS, DIM_HEAD), INPUT_DIM)
        self.cross_ff = PreNorm(LATENT_DIM, FeedForward(LATENT_DIM))
        self.self_attns = nn.ModuleList(nn.ModuleList([PreNorm(LATENT_DIM, Attention(LATENT_DIM, None, LATENT_HEADS,
                                                                                      DIM_HEAD)),
                                                       PreNorm(LATENT_DIM, FeedForward(LATENT_DIM))])
                                        for _ in range(SELF_PER_CROSS))
        self.to_logits = nn.Sequential(nn.LayerNorm(LATENT_DIM), nn.Linear(LATENT_DIM, num_classes))

    def forward(self, images):                                    # (B, C, H, W)
        b = images.size(0)
        data = images.permute(0, 2, 3, 1)
        axis = torch.linspace(-1.0, 1.0, SIZE)
        pos = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)
        enc = fourier_encode(pos, MAX_FREQ, BANDS).flatten(-2)     # (H, W, 2 * (2 * bands + 1))
        data = torch.cat([data, enc.expand(b, -1, -1, -1)], dim=-1).reshape(b, -1, INPUT_DIM)
        x = self.latents.expand(b, -1, -1)
        for _ in range(DEPTH):                                    # weights tied across depth
            x = x + self.cross_attn(x, context=data)
            x = x + self.cross_ff(x)
            for attn, ff in self.self_attns:
                x = x + attn(x)
                x = x + ff(x)
        return self.to_logits(x.mean(dim=1))


def build_model():
    return Perceiver()


def make_batch(batch_size):
    return torch.randn(batch_size, CHANNELS, SIZE, SIZE), torch.randint(0, 10, (batch_size,))


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
