"""MLP-Mixer: patch embedding, alternating token-mixing and channel-mixing MLPs with pre-LayerNorm residuals.

Source: lucidrains/mlp-mixer-pytorch, mlp_mixer_pytorch/mlp_mixer_pytorch.py (MLPMixer, FeedForward,
PreNormResidual); architecture of google-research/vision_transformer (vit_jax/models_mixer.py).
Finds: nothing
"""
import torch
from torch import nn


class PreNormResidual(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn, self.norm = fn, nn.LayerNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x)) + x


class TokenMixing(nn.Module):
    """The MLP applied across patches: transpose so the Linear layers see the token axis."""

    def __init__(self, tokens, expansion, dropout):
        super().__init__()
        inner = int(tokens * expansion)
        self.net = nn.Sequential(nn.Linear(tokens, inner), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(inner, tokens), nn.Dropout(dropout))

    def forward(self, x):                          # x: (B, tokens, dim)
        return self.net(x.transpose(1, 2)).transpose(1, 2)


def channel_mixing(dim, expansion, dropout):
    return nn.Sequential(nn.Linear(dim, dim * expansion), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(dim * expansion, dim), nn.Dropout(dropout))


class MLPMixer(nn.Module):
    def __init__(self, image_size=32, channels=3, patch_size=4, dim=32, depth=2, num_classes=10,
                 expansion_factor=4, expansion_factor_token=0.5, dropout=0.0):
        super().__init__()
        tokens = (image_size // patch_size) ** 2
        self.patch_size = patch_size
        self.embed = nn.Linear(patch_size * patch_size * channels, dim)
        layers = []
        for _ in range(depth):
            layers.append(PreNormResidual(dim, TokenMixing(tokens, expansion_factor_token, dropout)))
            layers.append(PreNormResidual(dim, channel_mixing(dim, expansion_factor, dropout)))
        self.mixer = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, img):
        b, c, h, w = img.shape
        p = self.patch_size
        patches = img.unfold(2, p, p).unfold(3, p, p)             # (B, C, H/p, W/p, p, p)
        patches = patches.permute(0, 2, 3, 4, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)
        x = self.norm(self.mixer(self.embed(patches)))
        return self.head(x.mean(dim=1))


def build_model():
    return MLPMixer()


def make_batch(batch_size):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
