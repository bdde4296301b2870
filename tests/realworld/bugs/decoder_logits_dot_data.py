"""An ingredient decoder returns `torch.stack(logits, 1).data`, so the training loss has no graph at all.

The recipe model decodes ingredients step by step and collects each step's logits; the decoder returns
them stacked and taken through `.data`, which drops the autograd history. loss.backward() then fails with
"element 0 of tensors does not require grad and does not have a grad_fn"; the reporter's fix was to drop
the `.data`.

Source: https://github.com/facebookresearch/inversecooking/issues/3
Finds: gradient-chain-broken @ ingredient_decoder
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, STEPS, HIDDEN = 40, 6, 64


class ImageEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, HIDDEN))

    def forward(self, images):
        return self.net(images)


class IngredientsDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.cell = nn.GRUCell(HIDDEN, HIDDEN)
        self.out = nn.Linear(HIDDEN, VOCAB)

    def forward(self, features):
        h = features
        token = torch.zeros(features.size(0), dtype=torch.long, device=features.device)   # <start>
        logits = []
        for _ in range(STEPS):
            h = self.cell(self.embed(token), h)
            step_logits = self.out(h)
            logits.append(step_logits)
            token = step_logits.argmax(dim=-1)                   # greedy: feed back the prediction
        return torch.stack(logits, 1).data                       # the bug: .data drops the graph


class InverseCooking(nn.Module):
    def __init__(self):
        super().__init__()
        self.image_encoder = ImageEncoder()
        self.ingredient_decoder = IngredientsDecoder()

    def forward(self, images):
        return self.ingredient_decoder(self.image_encoder(images))


def build_model() -> InverseCooking:
    return InverseCooking()


def make_batch(batch_size: int):
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, VOCAB, (batch_size, STEPS))


def loss_fn(logits, ingredients):
    return F.cross_entropy(logits.reshape(-1, VOCAB), ingredients.reshape(-1))
