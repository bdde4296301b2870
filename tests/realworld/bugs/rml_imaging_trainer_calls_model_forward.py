"""A radio-interferometry imaging library's trainer gets the model visibilities with `model.forward()`.

MPoL's TrainTest.train() (and test()) compute `vis = model.forward()` on a SimpleNet, whose own forward
chains its layers the same way (`self.bcube.forward()`, `self.icube.forward(x)`, `self.fcube.forward(x)`).
Calling forward() directly bypasses nn.Module.__call__, so forward pre-hooks and hooks registered on the
model (or its layers) never run. The issue: "PyTorch devs recommend against the former"; the maintainers
agreed to audit the code base and switch to `model()`.

Here: fit a small image to gridded, partly sampled and noisy visibilities (a chi-squared loss on the
sampled cells plus a sparsity regulariser).

Source: https://github.com/MPoL-dev/MPoL/issues/151
Finds: forward-called-directly @ (the model), forward-called-directly @ bcube, forward-called-directly @ icube, forward-called-directly @ fcube
"""
import torch
from torch import nn

from probes import Probe

NPIX = 32


class BaseCube(nn.Module):
    def __init__(self, npix=NPIX, nchan=1):
        super().__init__()
        self.base_cube = nn.Parameter(torch.full((nchan, npix, npix), 0.05))

    def forward(self):
        return nn.functional.softplus(self.base_cube)           # non-negative pixel values


class HannConvCube(nn.Module):
    def __init__(self, nchan=1):
        super().__init__()
        self.m = nn.Conv2d(nchan, nchan, kernel_size=3, padding=1, bias=False)
        hann = torch.tensor([0.25, 0.5, 0.25])
        self.m.weight.data = (hann[:, None] * hann[None, :]).expand(nchan, nchan, 3, 3).clone()
        self.m.weight.requires_grad_(False)

    def forward(self, cube):
        return self.m(cube.unsqueeze(0)).squeeze(0)


class ImageCube(nn.Module):
    def forward(self, cube):
        self.sky_cube = torch.fft.fftshift(cube, dim=(1, 2))
        return cube


class FourierCube(nn.Module):
    def forward(self, cube):
        return torch.fft.fftn(cube, dim=(1, 2))


class SimpleNet(nn.Module):
    def __init__(self, nchan=1):
        super().__init__()
        self.bcube = BaseCube(nchan=nchan)
        self.conv_layer = HannConvCube(nchan=nchan)
        self.icube = ImageCube()
        self.fcube = FourierCube()

    def forward(self):
        x = self.bcube.forward()
        x = self.conv_layer(x)
        x = self.icube.forward(x)
        return self.fcube.forward(x)


def nll_gridded(vis, dataset):
    resid = (vis - dataset["vis"])[dataset["mask"]]
    weight = dataset["weight"][dataset["mask"]]
    return (weight * resid.abs() ** 2).sum() / (2 * resid.numel())


class TrainTest:
    def __init__(self, optimizer, epochs=40, lambda_sparsity=1e-4):
        self._optimizer = optimizer
        self._epochs = epochs
        self._lambda_sparsity = lambda_sparsity

    def loss_eval(self, vis, dataset, sky_cube=None):
        loss = nll_gridded(vis, dataset)
        if sky_cube is not None:
            loss = loss + self._lambda_sparsity * sky_cube.abs().sum()
        return loss

    def train(self, model, dataset):
        model.train()
        losses = []
        for _ in range(self._epochs):
            self._optimizer.zero_grad()
            vis = model.forward()                               # the bug: should be model()
            loss = self.loss_eval(vis, dataset, model.icube.sky_cube)
            losses.append(loss.item())
            loss.backward()
            self._optimizer.step()
        return loss.item(), losses


def observation(seed=0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(NPIX), torch.arange(NPIX), indexing="ij")
    sky = torch.exp(-((xx - 12) ** 2 + (yy - 18) ** 2) / 8.0) + 0.5 * torch.exp(-((xx - 22) ** 2 + (yy - 9) ** 2) / 4.0)
    true_vis = torch.fft.fftn(torch.fft.ifftshift(sky)[None], dim=(1, 2))
    noise = torch.complex(torch.randn(true_vis.shape, generator=g), torch.randn(true_vis.shape, generator=g))
    mask = torch.rand(true_vis.shape, generator=g) < 0.4
    return {"vis": true_vis + 0.1 * noise, "weight": torch.full(true_vis.shape, 100.0), "mask": mask}


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    model = SimpleNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    trainer = TrainTest(optimizer)
    with Probe(model, optimizer, run_dir=run_dir):
        trainer.train(model, observation())
