"""A free-form inpainting GAN trainer zeroes and backpropagates the discriminator but never steps its optimizer.

The WGAN trainer of a DeepFill v2 re-implementation computes the SN-PatchGAN discriminator loss each
iteration, calls `optimizer_d.zero_grad()` and `loss_D.backward()`, and then goes straight on to the
generator: `optimizer_d.step()` is missing, so the discriminator keeps its random initial weights for the
whole run while its gradients are computed and thrown away (the maintainer: "you are right. I will add it").

Source: https://github.com/zhaoyuzhi/deepfillv2/issues/6
Finds: optimizer-not-stepping @ discriminator
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class GatedConv2d(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, dilation=1, activation=True):
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, dilation)
        self.mask = nn.Conv2d(cin, cout, k, stride, pad, dilation)
        self.activation = activation

    def forward(self, x):
        h = self.conv(x)
        h = F.elu(h) if self.activation else h
        return h * torch.sigmoid(self.mask(x))


class GatedGenerator(nn.Module):
    def __init__(self, ch=16):
        super().__init__()
        self.net = nn.Sequential(
            GatedConv2d(4, ch, 5), GatedConv2d(ch, 2 * ch, 3, 2), GatedConv2d(2 * ch, 2 * ch, 3, dilation=2),
            GatedConv2d(2 * ch, 2 * ch, 3, dilation=4), nn.Upsample(scale_factor=2),
            GatedConv2d(2 * ch, ch, 3), GatedConv2d(ch, 3, 3, activation=False))

    def forward(self, img, mask):
        masked = img * (1 - mask) + mask
        return torch.tanh(self.net(torch.cat([masked, mask], dim=1)))


class PatchDiscriminator(nn.Module):
    def __init__(self, ch=16):
        super().__init__()
        layers, cin = [], 4
        for cout in (ch, 2 * ch, 4 * ch, 4 * ch):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 5, 2, 2)), nn.LeakyReLU(0.2)]
            cin = cout
        self.net = nn.Sequential(*layers)

    def forward(self, img, mask):
        return self.net(torch.cat([img, mask], dim=1))


class InpaintingGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = GatedGenerator()
        self.discriminator = PatchDiscriminator()


def free_form_masks(n, size):
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        y, x = torch.randint(0, size // 2, (2,))
        masks[i, :, y:y + size // 2, x:x + size // 3] = 1
    return masks


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    images = torch.rand(96, 3, 32, 32) * 2 - 1
    loader = DataLoader(TensorDataset(images), batch_size=8, shuffle=True)
    model = InpaintingGAN()
    generator, discriminator = model.generator, model.discriminator
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=4e-4, betas=(0.5, 0.999))
    with Probe(model, [optimizer_g, optimizer_d], run_dir=run_dir) as probe:
        for epoch in range(2):
            for (img,) in probe.wrap(loader):
                mask = free_form_masks(img.size(0), img.size(-1))
                # Train Discriminator
                optimizer_d.zero_grad()
                fake = generator(img, mask)
                completed = img * (1 - mask) + fake * mask
                fake_scalar = discriminator(completed.detach(), mask)
                true_scalar = discriminator(img, mask)
                loss_D = F.relu(1 - true_scalar).mean() + F.relu(1 + fake_scalar).mean()   # hinge loss
                loss_D.backward()
                                                                # the bug: no optimizer_d.step() here
                # Train Generator
                optimizer_g.zero_grad()
                loss_l1 = (fake - img).abs().mean()
                gan_loss = -discriminator(completed, mask).mean()
                loss = loss_l1 + 0.01 * gan_loss
                loss.backward()
                optimizer_g.step()
