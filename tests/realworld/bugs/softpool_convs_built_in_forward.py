"""A point-cloud SoftPool layer builds its Conv2d layers (and its sorter) inside forward() on every call.

SoftPool sorts point features into regions, pools them into "cabins" and reduces them with a stack of
Conv2d layers. Those convolutions, and the Conv1d sorter that scores the regions, were constructed as
locals in forward(): `conv2d_1 = nn.Conv2d(...)`, ... then called. Each call draws fresh random weights that
the optimizer never sees and the checkpoint never saves. The reporter spent days debugging why the
weights were missing from the saved file; the author moved them into __init__.

Source: https://github.com/wangyida/softpool/issues/11
Finds: layer-created-in-forward @ softpool
"""
import torch
from torch import nn

POINTS, FEAT, OUT_POINTS = 256, 32, 64


class Sorter(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.conv1d = nn.Conv1d(dim_in, dim_out, 1)

    def forward(self, x):
        val_activa = self.conv1d(x)
        return val_activa, torch.argmax(val_activa, dim=1)


def train2cabins(windows, num_cabin):
    size_bth, size_feat, regions, num_points = windows.shape
    points_cabin = num_points // num_cabin
    return torch.stack([windows[..., i * points_cabin:(i + 1) * points_cabin].amax(-1)
                        for i in range(num_cabin)], dim=-1)


class SoftPool(nn.Module):
    def __init__(self, regions=8, cabins=8, sp_ratio=4):
        super().__init__()
        self.regions = regions
        self.num_cabin = cabins
        self.sp_ratio = sp_ratio

    def forward(self, x):
        size_bth, size_feat, n_points = x.shape
        pnt_per_sort = n_points // self.sp_ratio
        conv2d_1 = nn.Conv2d(size_feat, size_feat, kernel_size=(1, 3))     # the bug: built on every call
        conv2d_2 = nn.Conv2d(size_feat, size_feat, kernel_size=(1, 3))
        conv2d_3 = nn.Conv2d(size_feat, size_feat, kernel_size=(1, self.num_cabin - 2 * (3 - 1)))
        conv2d_5 = nn.Conv2d(size_feat, size_feat, kernel_size=(self.regions, 1))
        sorter = Sorter(size_feat, self.regions)
        val_activa, _ = sorter(x)

        regions = []
        for region in range(self.regions):
            order = torch.sort(val_activa[:, region, :], dim=1, descending=True)[1][:, :pnt_per_sort]
            regions.append(torch.gather(x, 2, order.unsqueeze(1).expand(-1, size_feat, -1)))
        sp_cube = torch.stack(regions, dim=2)                              # (B, F, regions, points)

        cabins = train2cabins(sp_cube, self.num_cabin)
        feature = torch.relu(conv2d_1(cabins))
        feature = torch.relu(conv2d_2(feature))
        feature = torch.relu(conv2d_3(feature))                            # (B, F, regions, 1)
        return conv2d_5(feature).flatten(1)                                # (B, F)


class SoftPoolNet(nn.Module):
    """Encode a partial cloud point-wise, SoftPool it to one code, decode a completed cloud."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv1d(3, FEAT, 1), nn.ReLU(), nn.Conv1d(FEAT, FEAT, 1))
        self.softpool = SoftPool()
        self.decoder = nn.Sequential(nn.Linear(FEAT, 128), nn.ReLU(), nn.Linear(128, OUT_POINTS * 3))

    def forward(self, partial):
        code = self.softpool(self.encoder(partial))
        return self.decoder(code).view(-1, OUT_POINTS, 3)


def make_batch(batch_size: int):
    sphere = nn.functional.normalize(torch.randn(batch_size, POINTS, 3), dim=-1)
    scale = torch.rand(batch_size, 1, 1) + 0.5
    complete = sphere * scale
    partial = complete.clone()
    partial[..., 2] = partial[..., 2].abs()                 # the observed half
    return partial.transpose(1, 2), complete[:, :OUT_POINTS]


def loss_fn(pred, target):
    d = torch.cdist(pred, target)
    return d.min(2)[0].mean() + d.min(1)[0].mean()          # Chamfer distance
