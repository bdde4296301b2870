"""A speech-enhancement GAN builds its discriminator optimizer from the MRD parameters twice and the MPD's never.

UNIVERSE++ has two discriminators, a multi-resolution (spectrogram) one and a multi-period (waveform) one.
The discriminator optimizer is given `list(self.loss_mrd.parameters()) + list(self.loss_mrd.parameters())`:
the second term was meant to be `self.loss_mpd`, so the multi-period discriminator is trained by no
optimizer at all while its adversarial and feature-matching losses keep steering the generator (the
maintainer: "it looks like the parameters of the mpd are never optimized").

Source: https://github.com/line/open-universe/issues/5
Finds: param-not-in-optimizer @ loss_mpd
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from probes import Probe

SAMPLES = 2048


class Generator(nn.Module):
    """Noisy waveform in, clean waveform out (a small 1-D conv encoder-decoder)."""

    def __init__(self, ch=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, ch, 15, padding=7), nn.PReLU(), nn.Conv1d(ch, ch, 15, stride=4, padding=7), nn.PReLU(),
            nn.ConvTranspose1d(ch, ch, 16, stride=4, padding=6), nn.PReLU(), nn.Conv1d(ch, 1, 15, padding=7))

    def forward(self, noisy):
        return torch.tanh(self.net(noisy))


class PeriodDiscriminator(nn.Module):
    def __init__(self, period):
        super().__init__()
        self.period = period
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(cin, cout, (5, 1), (3, 1), (2, 0)))
                                   for cin, cout in ((1, 16), (16, 32), (32, 32)))
        self.post = weight_norm(nn.Conv2d(32, 1, (3, 1), 1, (1, 0)))

    def forward(self, x):
        b, c, t = x.shape
        x = x.view(b, c, t // self.period, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.post(x).flatten(1), feats


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods=(2, 3, 5)):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p) for p in periods)

    def forward(self, x):
        return [d(F.pad(x, (0, (-x.shape[-1]) % d.period))) for d in self.discriminators]


class ResolutionDiscriminator(nn.Module):
    def __init__(self, n_fft):
        super().__init__()
        self.n_fft = n_fft
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(cin, cout, 3, (1, 2), 1))
                                   for cin, cout in ((1, 16), (16, 16), (16, 16)))
        self.post = weight_norm(nn.Conv2d(16, 1, 3, 1, 1))

    def forward(self, x):
        spec = torch.stft(x.squeeze(1), self.n_fft, self.n_fft // 4, window=torch.hann_window(self.n_fft),
                          return_complex=True).abs().unsqueeze(1)
        feats = []
        for conv in self.convs:
            spec = F.leaky_relu(conv(spec), 0.1)
            feats.append(spec)
        return self.post(spec).flatten(1), feats


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, ffts=(128, 256)):
        super().__init__()
        self.discriminators = nn.ModuleList(ResolutionDiscriminator(n) for n in ffts)

    def forward(self, x):
        return [d(x) for d in self.discriminators]


class UniverseGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = Generator()
        self.loss_mpd = MultiPeriodDiscriminator()
        self.loss_mrd = MultiResolutionDiscriminator()

    def configure_optimizers(self):
        opt_gen = torch.optim.AdamW(self.generator.parameters(), lr=2e-4, betas=(0.8, 0.99))
        params_disc = list(self.loss_mrd.parameters()) + list(
            self.loss_mrd.parameters()                               # the bug: should be self.loss_mpd
        )
        opt_disc = torch.optim.AdamW(params_disc, lr=2e-4, betas=(0.8, 0.99))
        return opt_gen, opt_disc


def disc_loss(real_outs, fake_outs):
    return sum(((1 - r) ** 2).mean() + (f ** 2).mean() for (r, _), (f, _) in zip(real_outs, fake_outs))


def gen_adv_loss(fake_outs, real_outs):
    adv = sum(((1 - f) ** 2).mean() for f, _ in fake_outs)
    fm = sum(F.l1_loss(ff, rf.detach()) for (_, ffs), (_, rfs) in zip(fake_outs, real_outs) for ff, rf in zip(ffs, rfs))
    return adv + 2 * fm


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    model = UniverseGAN()
    opt_gen, opt_disc = model.configure_optimizers()
    t = torch.linspace(0, 1, SAMPLES)
    with Probe(model, [opt_gen, opt_disc], run_dir=run_dir):
        for step in range(12):
            freq = torch.randint(50, 400, (8, 1, 1)).float()
            clean = 0.5 * torch.sin(2 * torch.pi * freq * t)
            noisy = clean + 0.3 * torch.randn_like(clean)
            enhanced = model.generator(noisy)
            # discriminators
            opt_disc.zero_grad()
            loss_d = (disc_loss(model.loss_mpd(clean), model.loss_mpd(enhanced.detach()))
                      + disc_loss(model.loss_mrd(clean), model.loss_mrd(enhanced.detach())))
            loss_d.backward()
            opt_disc.step()
            # generator
            opt_gen.zero_grad()
            loss_g = (gen_adv_loss(model.loss_mpd(enhanced), model.loss_mpd(clean))
                      + gen_adv_loss(model.loss_mrd(enhanced), model.loss_mrd(clean))
                      + 45 * F.l1_loss(enhanced, clean))
            loss_g.backward()
            opt_gen.step()
