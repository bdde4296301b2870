"""An InfoGAN discriminator's class head ends in nn.Softmax, and its output goes into CrossEntropyLoss.

The discriminator returns a tuple `(validity, label, latent_code)`; `label` comes from
`aux_layer = nn.Sequential(nn.Linear(...), nn.Softmax())`. In the information-loss step the predicted
label of generated images is scored with `torch.nn.CrossEntropyLoss()` against the sampled class, which
applies log-softmax again: the categorical part of the mutual-information loss is computed on
probabilities treated as logits, so it saturates near log(n_classes) and pushes weakly. A reader asked
why there is a softmax before CrossEntropyLoss; another agreed it is not needed.

Source: https://github.com/eriklindernoren/PyTorch-GAN/issues/84
Finds: loss-input-mismatch
"""
import itertools

import numpy as np
import torch
from torch import nn

from probes import Probe

LATENT, CODE, CLASSES, IMG, CHANNELS = 16, 2, 10, 16, 1


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.init_size = IMG // 4
        self.l1 = nn.Sequential(nn.Linear(LATENT + CLASSES + CODE, 64 * self.init_size ** 2))
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(64), nn.Upsample(scale_factor=2), nn.Conv2d(64, 64, 3, 1, 1),
            nn.BatchNorm2d(64, 0.8), nn.LeakyReLU(0.2, inplace=True), nn.Upsample(scale_factor=2),
            nn.Conv2d(64, 32, 3, 1, 1), nn.BatchNorm2d(32, 0.8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(32, CHANNELS, 3, 1, 1), nn.Tanh())

    def forward(self, noise, labels, code):
        out = self.l1(torch.cat((noise, labels, code), -1))
        return self.conv_blocks(out.view(out.shape[0], 64, self.init_size, self.init_size))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()

        def block(in_filters, out_filters, bn=True):
            layers = [nn.Conv2d(in_filters, out_filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                      nn.Dropout2d(0.25)]
            if bn:
                layers.append(nn.BatchNorm2d(out_filters, 0.8))
            return layers

        self.conv_blocks = nn.Sequential(*block(CHANNELS, 16, bn=False), *block(16, 32), *block(32, 64), *block(64, 128))
        ds_size = IMG // 2 ** 4
        self.adv_layer = nn.Sequential(nn.Linear(128 * ds_size ** 2, 1))
        self.aux_layer = nn.Sequential(nn.Linear(128 * ds_size ** 2, CLASSES), nn.Softmax(dim=1))   # the bug
        self.latent_layer = nn.Sequential(nn.Linear(128 * ds_size ** 2, CODE))

    def forward(self, img):
        out = self.conv_blocks(img).flatten(1)
        return self.adv_layer(out), self.aux_layer(out), self.latent_layer(out)


class InfoGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = Generator()
        self.discriminator = Discriminator()


def to_categorical(y, num_columns):
    return torch.eye(num_columns)[torch.as_tensor(y)]


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    gan = InfoGAN()
    generator, discriminator = gan.generator, gan.discriminator
    adversarial_loss, categorical_loss, continuous_loss = nn.MSELoss(), nn.CrossEntropyLoss(), nn.MSELoss()
    lambda_cat, lambda_con = 1, 0.1
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_info = torch.optim.Adam(itertools.chain(generator.parameters(), discriminator.parameters()),
                                      lr=2e-4, betas=(0.5, 0.999))
    images = torch.rand(160, CHANNELS, IMG, IMG) * 2 - 1
    loader = torch.utils.data.DataLoader(images, batch_size=16, shuffle=True)
    with Probe(gan, [optimizer_G, optimizer_D, optimizer_info], run_dir=run_dir) as probe:
        for epoch in range(2):
            for real_imgs in probe.wrap(loader):
                batch_size = real_imgs.shape[0]
                valid, fake = torch.ones(batch_size, 1), torch.zeros(batch_size, 1)

                optimizer_G.zero_grad()
                z = torch.randn(batch_size, LATENT)
                label_input = to_categorical(rng.integers(0, CLASSES, batch_size), CLASSES)
                code_input = torch.empty(batch_size, CODE).uniform_(-1, 1)
                gen_imgs = generator(z, label_input, code_input)
                validity, _, _ = discriminator(gen_imgs)
                g_loss = adversarial_loss(validity, valid)
                g_loss.backward()
                optimizer_G.step()

                optimizer_D.zero_grad()
                real_pred, _, _ = discriminator(real_imgs)
                fake_pred, _, _ = discriminator(gen_imgs.detach())
                d_loss = (adversarial_loss(real_pred, valid) + adversarial_loss(fake_pred, fake)) / 2
                d_loss.backward()
                optimizer_D.step()

                optimizer_info.zero_grad()
                sampled_labels = rng.integers(0, CLASSES, batch_size)
                gt_labels = torch.as_tensor(sampled_labels)
                z = torch.randn(batch_size, LATENT)
                label_input = to_categorical(sampled_labels, CLASSES)
                code_input = torch.randn(batch_size, CODE) - 1
                gen_imgs = generator(z, label_input, code_input)
                _, pred_label, pred_code = discriminator(gen_imgs)
                info_loss = lambda_cat * categorical_loss(pred_label, gt_labels) + \
                    lambda_con * continuous_loss(pred_code, code_input)
                info_loss.backward()
                optimizer_info.step()
