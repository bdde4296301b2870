"""DiT diffusion transformer with adaLN-Zero: zero-initialised modulation and final layer, noise-prediction MSE loss.

Source: facebookresearch/DiT, models.py (DiT, DiTBlock, TimestepEmbedder, LabelEmbedder, FinalLayer,
initialize_weights) and train.py (AdamW lr 1e-4, weight decay 0), with learn_sigma=False; the DDPM forward
process of diffusion/gaussian_diffusion.py with a linear beta schedule.
Finds: nothing
"""
import math

import torch
from torch import nn

IN_CH, SIZE, PATCH, HIDDEN, DEPTH, HEADS, CLASSES, T = 4, 8, 2, 32, 2, 4, 10, 1000


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq_dim=64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.freq_dim = freq_dim

    def forward(self, t):
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class LabelEmbedder(nn.Module):
    """Class embedding with label dropout for classifier-free guidance (an extra 'null' class)."""

    def __init__(self, classes, hidden, dropout_prob=0.1):
        super().__init__()
        self.embedding_table = nn.Embedding(classes + 1, hidden)
        self.classes, self.dropout_prob = classes, dropout_prob

    def forward(self, labels):
        if self.training and self.dropout_prob > 0:
            drop = torch.rand(labels.shape[0]) < self.dropout_prob
            labels = torch.where(drop, self.classes, labels)
        return self.embedding_table(labels)


class DiTBlock(nn.Module):
    def __init__(self, hidden, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        inner = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(approximate="tanh"), nn.Linear(inner, hidden))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        x = x + gate_msa.unsqueeze(1) * self.attn(h, h, h, need_weights=False)[0]
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    def __init__(self, hidden, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, PATCH * PATCH * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


def sincos_pos_embed(dim, grid):
    def one_axis(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1)[:, None] * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)
    gy, gx = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")
    return torch.cat([one_axis(dim // 2, gy), one_axis(dim // 2, gx)], dim=1).float()


class DiT(nn.Module):
    def __init__(self):
        super().__init__()
        self.x_embedder = nn.Conv2d(IN_CH, HIDDEN, PATCH, stride=PATCH)
        self.t_embedder = TimestepEmbedder(HIDDEN)
        self.y_embedder = LabelEmbedder(CLASSES, HIDDEN)
        self.register_buffer("pos_embed", sincos_pos_embed(HIDDEN, SIZE // PATCH).unsqueeze(0))
        self.blocks = nn.ModuleList(DiTBlock(HIDDEN, HEADS) for _ in range(DEPTH))
        self.final_layer = FinalLayer(HIDDEN, IN_CH)
        self.initialize_weights()

    def initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        w = self.x_embedder.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:                  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)        # the first prediction is exactly 0
        nn.init.zeros_(self.final_layer.linear.bias)

    def unpatchify(self, x):
        b, g = x.shape[0], SIZE // PATCH
        x = x.reshape(b, g, g, PATCH, PATCH, IN_CH).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, IN_CH, SIZE, SIZE)

    def forward(self, x, t, y):
        x = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))


BETAS = torch.linspace(1e-4, 0.02, T)
ALPHAS_CUMPROD = torch.cumprod(1 - BETAS, dim=0)


def build_model():
    return DiT()


def make_batch(batch_size):
    x0 = torch.randn(batch_size, IN_CH, SIZE, SIZE)          # VAE latents in the real pipeline
    t = torch.randint(0, T, (batch_size,))
    noise = torch.randn_like(x0)
    a = ALPHAS_CUMPROD[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    return (x_t, t, torch.randint(0, CLASSES, (batch_size,))), noise


def loss_fn(pred_noise, noise):
    return nn.functional.mse_loss(pred_noise, noise)


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
