"""A tutorial Transformer builds its attention output projection (and LayerNorm) inside forward().

MultiHeadAttention registers W_Q, W_K and W_V in __init__, but its forward() ends with
`nn.Linear(n_heads * d_v, d_model)(context)` and `nn.LayerNorm(d_model)(...)`: two brand-new layers per call.
The optimizer never sees them, and whatever one step would teach them is gone on the next call. The
reporter noticed that a Linear created "casually" in forward is never trained.

Source: https://github.com/graykode/nlp-tutorial/issues/29
Finds: layer-created-in-forward @ encoder.layers.0.enc_self_attn
"""
import math

import torch
from torch import nn

VOCAB, SEQ, CLASSES = 100, 12, 4
D_MODEL, D_FF, D_K, D_V, N_HEADS, N_LAYERS = 32, 64, 8, 8, 4, 2


class ScaledDotProductAttention(nn.Module):
    def forward(self, q, k, v, mask):
        scores = q @ k.transpose(-1, -2) / math.sqrt(D_K)
        scores = scores.masked_fill(mask, -1e9)
        return torch.softmax(scores, dim=-1) @ v


class MultiHeadAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_Q = nn.Linear(D_MODEL, D_K * N_HEADS)
        self.W_K = nn.Linear(D_MODEL, D_K * N_HEADS)
        self.W_V = nn.Linear(D_MODEL, D_V * N_HEADS)
        self.attention = ScaledDotProductAttention()

    def forward(self, q, k, v, mask):
        residual, b = q, q.size(0)
        q_s = self.W_Q(q).view(b, -1, N_HEADS, D_K).transpose(1, 2)
        k_s = self.W_K(k).view(b, -1, N_HEADS, D_K).transpose(1, 2)
        v_s = self.W_V(v).view(b, -1, N_HEADS, D_V).transpose(1, 2)
        mask = mask.unsqueeze(1).repeat(1, N_HEADS, 1, 1)
        context = self.attention(q_s, k_s, v_s, mask).transpose(1, 2).reshape(b, -1, N_HEADS * D_V)
        output = nn.Linear(N_HEADS * D_V, D_MODEL)(context)          # the bug: a fresh projection per call
        return nn.LayerNorm(D_MODEL)(output + residual)             # ... and a fresh LayerNorm


class PoswiseFeedForwardNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(D_MODEL, D_FF, kernel_size=1)
        self.conv2 = nn.Conv1d(D_FF, D_MODEL, kernel_size=1)
        self.norm = nn.LayerNorm(D_MODEL)

    def forward(self, x):
        out = self.conv2(torch.relu(self.conv1(x.transpose(1, 2)))).transpose(1, 2)
        return self.norm(out + x)


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc_self_attn = MultiHeadAttention()
        self.pos_ffn = PoswiseFeedForwardNet()

    def forward(self, x, mask):
        return self.pos_ffn(self.enc_self_attn(x, x, x, mask))


def sinusoid_table(n_position: int, d_model: int) -> torch.Tensor:
    pos = torch.arange(n_position, dtype=torch.float32).unsqueeze(1)
    i = torch.arange(d_model, dtype=torch.float32).unsqueeze(0)
    angle = pos / torch.pow(10000.0, 2 * (i // 2) / d_model)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.src_emb = nn.Embedding(VOCAB, D_MODEL)
        self.pos_emb = nn.Embedding.from_pretrained(sinusoid_table(SEQ + 1, D_MODEL), freeze=True)
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(N_LAYERS))

    def forward(self, tokens):
        positions = torch.arange(tokens.size(1), device=tokens.device).unsqueeze(0)
        x = self.src_emb(tokens) + self.pos_emb(positions)
        mask = tokens.eq(0).unsqueeze(1).expand(-1, tokens.size(1), -1)     # padding mask
        for layer in self.layers:
            x = layer(x, mask)
        return x


class SentenceClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.projection = nn.Linear(D_MODEL, CLASSES, bias=False)

    def forward(self, tokens):
        return self.projection(self.encoder(tokens).mean(dim=1))


def make_batch(batch_size: int):
    return torch.randint(1, VOCAB, (batch_size, SEQ)), torch.randint(0, CLASSES, (batch_size,))


def build_model() -> SentenceClassifier:
    return SentenceClassifier()
