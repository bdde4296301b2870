"""A video-diffusion generator is cast to bfloat16 before fine-tuning: AdamW's small steps round away.

Training ran fine under mixed precision (fp32 weights, bf16 compute). Moving the whole model to
`model.to(dtype=torch.bfloat16)` instead made the generator "unable to converge": with weights stored in
bf16 (8 significant bits) every update smaller than half a unit in the last place of the weight rounds back
to the old value. At a fine-tuning learning rate AdamW's step (~lr per element) is far below that for
almost every weight, and for the LayerNorm gains (1.0) it is lost every time. The maintainer: parameter
updates "will suffer if we cast it to bfloat16"; keep fp32 master weights (autocast / mixed precision).

Source: https://github.com/tianweiy/CausVid/issues/19
Finds: weights-not-updating @ (the model)
"""
import math

import torch
from torch import nn

LATENT, PATCH, DIM, HEADS, DEPTH = 4, 2, 64, 4, 2
FRAMES, SIZE = 2, 8
TOKENS = FRAMES * (SIZE // PATCH) ** 2


def timestep_embedding(t, dim):
    freqs = torch.exp(-math.log(10000) * torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class DiTBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(approximate="tanh"), nn.Linear(4 * DIM, DIM))
        self.ada = nn.Linear(DIM, 4 * DIM)

    def forward(self, x, c):
        shift1, scale1, shift2, scale2 = self.ada(c).unsqueeze(1).chunk(4, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class VideoDiT(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(LATENT * PATCH * PATCH, DIM)
        self.pos_embed = nn.Parameter(torch.randn(1, TOKENS, DIM) * 0.02)
        self.t_embed = nn.Sequential(nn.Linear(DIM, DIM), nn.SiLU(), nn.Linear(DIM, DIM))
        self.blocks = nn.ModuleList(DiTBlock() for _ in range(DEPTH))
        self.norm_out = nn.LayerNorm(DIM)
        self.proj_out = nn.Linear(DIM, LATENT * PATCH * PATCH)

    def forward(self, latents, t):
        b = latents.shape[0]
        x = latents.unfold(3, PATCH, PATCH).unfold(4, PATCH, PATCH)            # B C F H' W' p p
        x = x.permute(0, 2, 3, 4, 1, 5, 6).reshape(b, TOKENS, -1)
        x = self.patch_embed(x) + self.pos_embed
        c = self.t_embed(timestep_embedding(t, DIM).to(x.dtype))
        for block in self.blocks:
            x = block(x, c)
        return self.proj_out(self.norm_out(x))                                  # predicted noise, per patch


def build_model():
    return VideoDiT().to(dtype=torch.bfloat16)              # the bug: bf16 weights, no fp32 master copy


def make_batch(batch_size: int):
    latents = torch.randn(batch_size, LATENT, FRAMES, SIZE, SIZE)
    noise = torch.randn_like(latents)
    t = torch.randint(0, 1000, (batch_size,))
    alpha = torch.cos(t.float() / 1000 * math.pi / 2).view(-1, 1, 1, 1, 1)
    noisy = alpha * latents + (1 - alpha ** 2).sqrt() * noise
    target = noise.unfold(3, PATCH, PATCH).unfold(4, PATCH, PATCH).permute(0, 2, 3, 4, 1, 5, 6)
    return (noisy.to(torch.bfloat16), t), target.reshape(batch_size, TOKENS, -1).to(torch.bfloat16)


def loss_fn(pred, target):
    return torch.nn.functional.mse_loss(pred.float(), target.float())


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
