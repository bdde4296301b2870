"""A sentence-embedding triplet loss takes sqrt(sum(square(a - p))): an anchor equal to its positive gives NaN.

The Euclidean distance in the similarity utilities was written out as a square root of a sum of squares.
When an anchor and its positive are the same text (duplicates are common in mined triplets) their
embeddings are identical, the distance is exactly 0 and the loss term is fine, but the backward pass
multiplies sqrt's infinite derivative at 0 by the zero difference: NaN gradients, and after the optimizer
step NaN weights. The fix uses torch.linalg.vector_norm, whose subgradient at 0 is 0.

Source: https://github.com/huggingface/sentence-transformers/pull/4033
Finds: nonfinite-values @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, DIM, SEQ = 500, 64, 12


class SentenceEncoder(nn.Module):
    """Token embeddings, a small transformer layer, mean pooling and a dense projection."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.layer = nn.TransformerEncoderLayer(DIM, 4, 2 * DIM, dropout=0.0, batch_first=True)
        self.dense = nn.Linear(DIM, DIM)

    def forward(self, ids):
        mask = ids != 0
        h = self.layer(self.embed(ids), src_key_padding_mask=~mask)
        pooled = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return torch.tanh(self.dense(pooled))


def euclidean_distance(a, b):
    return torch.sqrt(torch.sum((a - b) ** 2, dim=-1))              # the bug: d sqrt / dx is inf at 0


class TripletLoss(nn.Module):
    """As in sentence-transformers, the loss module wraps the model it trains."""

    def __init__(self, model, margin: float = 5.0):
        super().__init__()
        self.model = model
        self.margin = margin

    def forward(self, anchor, positive, negative):
        a, p, n = self.model(anchor), self.model(positive), self.model(negative)
        return F.relu(euclidean_distance(a, p) - euclidean_distance(a, n) + self.margin).mean()


def build_model():
    return TripletLoss(SentenceEncoder())


def make_batch(batch_size: int):
    anchor = torch.randint(1, VOCAB, (batch_size, SEQ))
    positive = anchor.clone()
    positive[batch_size // 2:, -3:] = torch.randint(1, VOCAB, (batch_size - batch_size // 2, 3))  # paraphrases
    negative = torch.randint(1, VOCAB, (batch_size, SEQ))   # first half: the positive is the anchor text itself
    return (anchor, positive, negative), torch.zeros(batch_size)


def loss_fn(loss, _):
    return loss
