"""Clean reference: a small language model whose output layer shares its weight with the token embedding
(weight tying). The shared tensor is one parameter under two names; it is in the optimizer once.

Finds: nothing
"""
import torch
from torch import nn


class TiedLM(nn.Module):
    def __init__(self, vocab: int = 100, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mix = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.embed.weight            # tied

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.mix(self.embed(tokens)))


def make_batch(batch_size: int):
    tokens = torch.randint(0, 100, (batch_size, 17))
    return tokens[:, :-1], tokens[:, 1:]
