"""MoCo v2: a momentum key encoder (no gradients, updated as an EMA inside forward, BatchNorm in train mode under
no_grad) and a queue of negative keys, InfoNCE loss.

Source: facebookresearch/moco, moco/builder.py (MoCo: _momentum_update_key_encoder, _dequeue_and_enqueue, the
key encoder run under torch.no_grad(), logits / T with T = 0.07) and main_moco.py (SGD lr 0.03, momentum 0.9,
weight decay 1e-4); single process, so no shuffle-BN all-gather; the ResNet replaced by a small CNN.
Finds: nothing
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F


def encoder(dim):
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, 32), nn.ReLU(inplace=True), nn.Linear(32, dim))      # the v2 MLP head


class MoCo(nn.Module):
    def __init__(self, dim=32, K=256, m=0.999, T=0.07):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = encoder(dim)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad = False                # updated by momentum, not by the optimizer
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            k.data = k.data * self.m + q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        ptr = int(self.queue_ptr)
        self.queue[:, ptr:ptr + keys.shape[0]] = keys.T
        self.queue_ptr[0] = (ptr + keys.shape[0]) % self.K

    def forward(self, im_q, im_k):
        q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            k = F.normalize(self.encoder_k(im_k), dim=1)
        l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", q, self.queue.clone().detach())
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        self._dequeue_and_enqueue(k)
        return logits


def build_model():
    return MoCo()


def make_batch(batch_size):
    images = torch.rand(batch_size, 3, 32, 32)
    view = lambda x: (x * (0.7 + 0.6 * torch.rand(x.size(0), 3, 1, 1)) + 0.05 * torch.randn_like(x)).clamp(0, 1)
    # the positive key is at index 0 of every row of logits
    return (view(images), view(images)), torch.zeros(batch_size, dtype=torch.long)


def loss_fn(logits, labels):
    return F.cross_entropy(logits, labels)


def make_optimizer(model):
    return torch.optim.SGD(model.encoder_q.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
