"""A referring-segmentation model zero-initialises both layers of its residual gate, with a ReLU in between.

The language-vision fusion output is added back through a gate, Linear -> ReLU -> Linear -> Tanh, and
both Linear layers (no bias) are initialised to zero "to ease the start of training". The first Linear
outputs 0 for every input, the ReLU passes neither a value nor a gradient, and so neither Linear ever
receives a gradient: the gate stays closed for good. The reporter checked it with a toy script.

Source: https://github.com/yz93/LAVT-RIS/issues/25
Finds: dead-units @ fusion.res_gate.1
"""
import torch
from torch import nn

DIM, WORDS, VOCAB, H, W = 32, 8, 100, 8, 8


class PWAMFusion(nn.Module):
    """Pixel-word attention: each pixel attends to the words, then a gated residual adds the result."""

    def __init__(self, dim: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, 4, batch_first=True)
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.GELU())
        self.res_gate = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.ReLU(),
                                      nn.Linear(dim, dim, bias=False), nn.Tanh())
        nn.init.zeros_(self.res_gate[0].weight)                 # the bug: zero init before a ReLU
        nn.init.zeros_(self.res_gate[2].weight)

    def forward(self, x, words):
        x_residual = self.project(self.attn(x, words, words)[0] * x)
        return x + self.res_gate(x_residual) * x_residual


class LAVTLite(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, DIM, 4, stride=4)
        self.word_embed = nn.Embedding(VOCAB, DIM)
        self.text_encoder = nn.GRU(DIM, DIM, batch_first=True)
        self.fusion = PWAMFusion(DIM)
        self.mask_head = nn.Conv2d(DIM, 2, 1)

    def forward(self, image, words):
        x = self.patch_embed(image).flatten(2).transpose(1, 2)      # (B, H*W, C)
        w, _ = self.text_encoder(self.word_embed(words))
        x = self.fusion(x, w)
        return self.mask_head(x.transpose(1, 2).reshape(-1, DIM, H, W))


def build_model() -> LAVTLite:
    return LAVTLite()


def make_batch(batch_size: int):
    image = torch.randn(batch_size, 3, 4 * H, 4 * W)
    words = torch.randint(0, VOCAB, (batch_size, WORDS))
    return (image, words), torch.randint(0, 2, (batch_size, H, W))


def loss_fn(logits, mask):
    return nn.functional.cross_entropy(logits, mask)
