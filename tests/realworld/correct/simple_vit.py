"""Simple ViT: fixed 2D sin-cos position embedding, pre-norm attention/MLP blocks, global average pooling head.

Source: lucidrains/vit-pytorch, vit_pytorch/simple_vit.py (SimpleViT, posemb_sincos_2d, Attention, FeedForward),
after "Better plain ViT baselines for ImageNet-1k" (Beyer et al.).
Finds: nothing
"""
import torch
from torch import nn


def posemb_sincos_2d(h, w, dim, temperature=10000.0):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4) / (dim // 4 - 1))
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1).float()


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(self.norm(x)).chunk(3, -1))
        attn = (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        return self.net(x)


class SimpleViT(nn.Module):
    def __init__(self, image_size=32, patch_size=4, num_classes=10, dim=32, depth=2, heads=4, mlp_dim=64,
                 channels=3, dim_head=8):
        super().__init__()
        self.patch_size = patch_size
        self.to_patch_embedding = nn.Sequential(nn.LayerNorm(patch_size * patch_size * channels),
                                                nn.Linear(patch_size * patch_size * channels, dim), nn.LayerNorm(dim))
        grid = image_size // patch_size
        self.register_buffer("pos_embedding", posemb_sincos_2d(grid, grid, dim), persistent=False)
        self.layers = nn.ModuleList(nn.ModuleList([Attention(dim, heads, dim_head), FeedForward(dim, mlp_dim)])
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.linear_head = nn.Linear(dim, num_classes)

    def forward(self, img):
        b, c, h, w = img.shape
        p = self.patch_size
        patches = img.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c)
        x = self.to_patch_embedding(patches) + self.pos_embedding
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.linear_head(self.norm(x).mean(dim=1))


def build_model():
    return SimpleViT()


def make_batch(batch_size):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
