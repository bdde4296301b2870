"""NeRF: positional encoding of points and view directions, an MLP with a skip connection that predicts density
and view-dependent colour, stratified samples along each ray alpha-composited into a pixel, MSE to the pixel.

Source: yenchenlin/nerf-pytorch, run_nerf_helpers.py (Embedder with log-sampled frequencies and the input kept,
NeRF with skips=[4] and use_viewdirs) and run_nerf.py (raw2outputs, stratified sampling with perturbation,
img2mse, Adam lr 5e-4); depth and width reduced, no hierarchical fine network.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

POS_FREQS, DIR_FREQS, WIDTH, DEPTH, SKIP, SAMPLES, NEAR, FAR = 6, 2, 64, 6, 3, 16, 2.0, 6.0


def embed(x, n_freqs):
    freqs = 2.0 ** torch.arange(n_freqs)
    parts = [x] + [fn(x * f) for f in freqs for fn in (torch.sin, torch.cos)]
    return torch.cat(parts, dim=-1)


class NeRF(nn.Module):
    def __init__(self):
        super().__init__()
        self.in_pts, self.in_dirs = 3 * (1 + 2 * POS_FREQS), 3 * (1 + 2 * DIR_FREQS)
        layers = [nn.Linear(self.in_pts, WIDTH)]
        for i in range(DEPTH - 1):
            layers.append(nn.Linear(WIDTH + self.in_pts if i == SKIP else WIDTH, WIDTH))
        self.pts_linears = nn.ModuleList(layers)
        self.alpha_linear = nn.Linear(WIDTH, 1)
        self.feature_linear = nn.Linear(WIDTH, WIDTH)
        self.views_linears = nn.ModuleList([nn.Linear(WIDTH + self.in_dirs, WIDTH // 2)])
        self.rgb_linear = nn.Linear(WIDTH // 2, 3)

    def query(self, pts, dirs):
        x_pts, x_dirs = embed(pts, POS_FREQS), embed(dirs, DIR_FREQS)
        h = x_pts
        for i, layer in enumerate(self.pts_linears):
            h = F.relu(layer(h))
            if i == SKIP:
                h = torch.cat([x_pts, h], dim=-1)
        sigma = self.alpha_linear(h)
        h = torch.cat([self.feature_linear(h), x_dirs], dim=-1)
        for layer in self.views_linears:
            h = F.relu(layer(h))
        return torch.cat([self.rgb_linear(h), sigma], dim=-1)

    def forward(self, rays_o, rays_d):
        n = rays_o.size(0)
        t = torch.linspace(0.0, 1.0, SAMPLES)
        z = NEAR * (1 - t) + FAR * t
        z = z.expand(n, SAMPLES)
        if self.training:                                       # stratified: jitter within each bin
            mids = 0.5 * (z[:, 1:] + z[:, :-1])
            upper, lower = torch.cat([mids, z[:, -1:]], -1), torch.cat([z[:, :1], mids], -1)
            z = lower + (upper - lower) * torch.rand_like(z)
        pts = rays_o[:, None, :] + rays_d[:, None, :] * z[..., None]
        viewdirs = F.normalize(rays_d, dim=-1)[:, None, :].expand_as(pts)
        raw = self.query(pts, viewdirs)
        # raw2outputs
        dists = torch.cat([z[:, 1:] - z[:, :-1], torch.full((n, 1), 1e10)], dim=-1) * rays_d.norm(dim=-1, keepdim=True)
        rgb = torch.sigmoid(raw[..., :3])
        alpha = 1.0 - torch.exp(-F.relu(raw[..., 3]) * dists)
        trans = torch.cumprod(torch.cat([torch.ones(n, 1), 1.0 - alpha + 1e-10], dim=-1), dim=-1)[:, :-1]
        weights = alpha * trans
        return (weights[..., None] * rgb).sum(dim=-2)


def build_model():
    return NeRF()


def make_batch(batch_size):
    n = batch_size * 32                                         # N_rand rays per step
    rays_o = torch.randn(n, 3) * 0.1 + torch.tensor([0.0, 0.0, -4.0])
    rays_d = F.normalize(torch.randn(n, 3) * 0.3 + torch.tensor([0.0, 0.0, 1.0]), dim=-1)
    target = torch.sigmoid(rays_d @ torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0]]))   # a smooth image
    return (rays_o, rays_d), target


def loss_fn(rgb, target):
    return F.mse_loss(rgb, target)                               # img2mse


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999))
