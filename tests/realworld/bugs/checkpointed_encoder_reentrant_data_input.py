"""A weather model checkpoints its input encoder with reentrant checkpointing: the encoder never gets a gradient.

The conditional spherical-Fourier network wraps its blocks in `torch.utils.checkpoint.checkpoint(...)`
without `use_reentrant=False`. The reentrant variant returns an output with no grad_fn when none of its
*inputs* require grad, and the encoder's input is the data. So with checkpointing switched on the encoder's
parameters end every backward at `grad=None`: the run trains with a frozen, randomly initialised input
encoder, and nothing louder than a UserWarning says so. The fix passed `use_reentrant=False`.

Source: https://github.com/ai2cm/ace/pull/1493
Finds: gradient-chain-broken @ encoder
"""
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

CHANNELS, EMBED, LAT, LON = 6, 32, 16, 32


class SpectralBlock(nn.Module):
    """A filter in the 2-D Fourier domain (a stand-in for the spherical harmonic transform) plus an MLP."""

    def __init__(self, dim: int, modes: int = 6):
        super().__init__()
        self.modes = modes
        self.weight = nn.Parameter(torch.randn(dim, modes, modes, dtype=torch.cfloat) * 0.02)
        self.norm = nn.GroupNorm(1, dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 2 * dim, 1), nn.GELU(), nn.Conv2d(2 * dim, dim, 1))

    def forward(self, x):
        spec = torch.fft.rfft2(x, norm="ortho")
        out = torch.zeros_like(spec)
        out[:, :, :self.modes, :self.modes] = spec[:, :, :self.modes, :self.modes] * self.weight
        x = x + torch.fft.irfft2(out, s=x.shape[-2:], norm="ortho")
        return x + self.mlp(self.norm(x))


class ConditionalSFNO(nn.Module):
    def __init__(self, checkpointing: int = 1):
        super().__init__()
        self.checkpointing = checkpointing
        self.encoder = nn.Sequential(nn.Conv2d(CHANNELS, EMBED, 1), nn.GELU(), nn.Conv2d(EMBED, EMBED, 1, bias=False))
        self.blocks = nn.ModuleList(SpectralBlock(EMBED) for _ in range(3))
        self.decoder = nn.Sequential(nn.Conv2d(EMBED, EMBED, 1), nn.GELU(), nn.Conv2d(EMBED, CHANNELS, 1))

    def forward(self, x):
        if self.checkpointing >= 1:
            h = checkpoint(self.encoder, x, use_reentrant=True)          # the bug: x is data, no input needs grad
        else:
            h = self.encoder(x)
        for block in self.blocks:
            h = checkpoint(block, h, use_reentrant=True) if self.checkpointing >= 2 else block(h)
        return self.decoder(h)


def make_batch(batch_size: int):
    state = torch.randn(batch_size, CHANNELS, LAT, LON)
    return state, state.roll(1, dims=-1) + 0.1 * torch.randn_like(state)      # next step: advected state
