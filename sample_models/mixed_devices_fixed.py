"""Fixed twin of mixed_devices.py: the position table is a non-persistent buffer, so to_empty() gives it
real storage next to the parameters and reset_parameters() fills it.

Finds: nothing
"""
import math

import torch
from torch import nn


def sinusoids(length: int, dim: int) -> torch.Tensor:
    """The fixed sine/cosine position table of the original Transformer."""
    position = torch.arange(length).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class SequenceClassifier(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 64, context: int = 32, classes: int = 4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.register_buffer("positions", torch.empty(context, dim), persistent=False)
        self.mix = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.head = nn.Linear(dim, classes)

    def reset_parameters(self) -> None:
        """Fill the table after to_empty(): it is not learned, so no checkpoint holds it."""
        self.positions.copy_(sinusoids(*self.positions.shape))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.positions[: tokens.shape[1]]
        return self.head(self.mix(h).mean(dim=1))


def build_model() -> SequenceClassifier:
    with torch.device("meta"):              # build in no time: no memory, no random init
        model = SequenceClassifier()
    model.to_empty(device="cpu")            # real, uninitialised storage for parameters and buffers
    with torch.no_grad():
        for module in model.modules():      # then initialise (or load_state_dict from a checkpoint)
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


def make_batch(batch_size: int):
    return torch.randint(0, 1000, (batch_size, 32)), torch.randint(0, 4, (batch_size,))
