"""DDPM training step on a small time-conditioned U-Net: sinusoidal timestep embedding added inside GroupNorm
residual blocks, self-attention at the lowest resolution, epsilon prediction with an MSE loss.

Source: lucidrains/denoising-diffusion-pytorch, denoising_diffusion_pytorch/denoising_diffusion_pytorch.py
(SinusoidalPosEmb, ResnetBlock with a time MLP, Attention, Unet, GaussianDiffusion.p_losses with a linear beta
schedule and objective "pred_noise"), after Ho et al., "Denoising Diffusion Probabilistic Models".
Finds: nothing
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

T_STEPS, CH, SIZE = 200, 3, 16


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
        args = t.float()[:, None] * freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=-1)


class ResnetBlock(nn.Module):
    def __init__(self, dim_in, dim_out, time_dim, groups=4):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, dim_out))
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.norm1 = nn.GroupNorm(groups, dim_out)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, dim_out)
        self.skip = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x, t_emb):
        h = F.silu(self.norm1(self.conv1(x)))
        h = h + self.time_mlp(t_emb)[:, :, None, None]
        h = F.silu(self.norm2(self.conv2(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    def __init__(self, dim, heads=2):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.to_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=1)
        q, k, v = (z.reshape(b, self.heads, c // self.heads, h * w).transpose(-1, -2) for z in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.to_out(out.transpose(-1, -2).reshape(b, c, h, w))


class Unet(nn.Module):
    def __init__(self, dim=16, mults=(1, 2)):
        super().__init__()
        time_dim = dim * 4
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(dim), nn.Linear(dim, time_dim), nn.GELU(),
                                      nn.Linear(time_dim, time_dim))
        self.init_conv = nn.Conv2d(CH, dim, 3, padding=1)
        dims = [dim] + [dim * m for m in mults]
        self.downs = nn.ModuleList()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(mults) - 1
            self.downs.append(nn.ModuleList([ResnetBlock(a, b, time_dim),
                                             nn.Identity() if last else nn.Conv2d(b, b, 4, 2, 1)]))
        self.mid_block1 = ResnetBlock(dims[-1], dims[-1], time_dim)
        self.mid_attn = Attention(dims[-1])
        self.mid_block2 = ResnetBlock(dims[-1], dims[-1], time_dim)
        self.ups = nn.ModuleList()
        for i, (a, b) in enumerate(reversed(list(zip(dims[:-1], dims[1:])))):
            last = i == len(mults) - 1
            self.ups.append(nn.ModuleList([ResnetBlock(b * 2, a, time_dim),
                                           nn.Identity() if last else nn.Sequential(
                                               nn.Upsample(scale_factor=2, mode="nearest"),
                                               nn.Conv2d(a, a, 3, padding=1))]))
        self.final = nn.Conv2d(dim, CH, 1)

    def forward(self, x, t):
        t_emb = self.time_mlp(t)
        x = self.init_conv(x)
        skips = []
        for block, down in self.downs:
            x = block(x, t_emb)
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, t_emb)), t_emb)
        for block, up in self.ups:
            x = block(torch.cat([x, skips.pop()], dim=1), t_emb)
            x = up(x)
        return self.final(x)


BETAS = torch.linspace(1e-4, 0.02, T_STEPS)
ALPHAS_CUMPROD = torch.cumprod(1.0 - BETAS, dim=0)


def build_model():
    return Unet()


def make_batch(batch_size):
    # images scaled to [-1, 1] as the Trainer's normalize_to_neg_one_to_one does
    x0 = torch.rand(batch_size, CH, SIZE, SIZE) * 2 - 1
    return x0, x0                # the target (the noise) is drawn in train_step


def train_step(model, batch, optimizer, loss_fn):
    x0, _ = batch
    t = torch.randint(0, T_STEPS, (x0.size(0),))
    noise = torch.randn_like(x0)
    a = ALPHAS_CUMPROD[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise            # q_sample
    loss = F.mse_loss(model(x_t, t), noise)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.99))
