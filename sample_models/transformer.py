"""Clean reference: a small transformer language model on token ids (next-token logits per position).

Finds: nothing
"""
import torch
from torch import nn

VOCAB, CONTEXT = 128, 16


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = VOCAB, dim: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.zeros(1, CONTEXT, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(ids) + self.positions[:, : ids.shape[1]]
        causal = nn.Transformer.generate_square_subsequent_mask(ids.shape[1], device=ids.device)
        return self.head(self.norm(self.encoder(x, mask=causal, is_causal=True)))


def make_batch(batch_size: int):
    """Predict each next token of a random sequence."""
    ids = torch.randint(0, VOCAB, (batch_size, CONTEXT + 1))
    return ids[:, :-1], ids[:, 1:]
