"""A sentence encoder feeds an empty (length-0) sequence to MultiheadAttention: every key is masked, NaN.

The padding mask is built from the sequence lengths, and the batch holds a sequence of length 0 (the
reporter's lengths were [5, 4, 1, 0]). For that row every key position is masked, the softmax over a row of
-inf is NaN, and the NaN goes on into the pooled features, the loss and, after backward, every weight.

Source: https://github.com/pytorch/pytorch/issues/27968
Finds: nonfinite-values @ attn
"""
import torch
from torch import nn

VOCAB, MAX_LEN, DIM, CLASSES = 50, 5, 16, 3


def seq_len_to_mask(seq_len: torch.Tensor, max_len: int) -> torch.Tensor:
    """True at padding positions, as key_padding_mask expects."""
    return torch.arange(max_len).expand(seq_len.size(0), -1).ge(seq_len.unsqueeze(1))


class AttentionPoolClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.attn = nn.MultiheadAttention(DIM, 2, batch_first=True)
        self.out = nn.Linear(DIM, CLASSES)

    def forward(self, tokens, lengths):
        x = self.embed(tokens)
        padding = seq_len_to_mask(lengths, tokens.size(1))
        h, _ = self.attn(x, x, x, key_padding_mask=padding)     # the bug: a length-0 row masks every key
        return self.out(h.mean(dim=1))


def make_batch(batch_size: int):
    lengths = torch.tensor([5, 4, 1, 0] * (batch_size // 4) + [3] * (batch_size % 4))
    tokens = torch.randint(1, VOCAB, (batch_size, MAX_LEN)) * seq_len_to_mask(lengths, MAX_LEN).logical_not()
    return (tokens, lengths), torch.randint(0, CLASSES, (batch_size,))
