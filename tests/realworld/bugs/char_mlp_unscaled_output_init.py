"""A character-level MLP language model starts at a loss of ~27 instead of -log(1/27) = 3.3.

Notes on the makemore MLP: the output layer's weights and bias are drawn with a bare torch.randn (here the
hidden layer already has its tanh gain / sqrt(fan_in) scale), so at initialisation the 27 logits are large
and spread, softmax is confidently wrong, and the first iteration's loss is about 26 (the "hockey stick" in
the loss curve) while the following ones settle near 3. A model that knows nothing should predict 1/27 for
every character; the fix scales the output layer down (`W2 * 0.01`, `b2 * 0`) so the first logits are near
zero.

Source: https://bigghis.github.io/AI-appunti/guide/optimizations/initialloss.html
Finds: suspicious-initial-loss @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, BLOCK, EMBD, HIDDEN = 27, 3, 10, 200
NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia", "harper", "evelyn"]


class MLPLanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(2147483647)
        self.C = nn.Parameter(torch.randn((VOCAB, EMBD), generator=g))
        self.W1 = nn.Parameter(torch.randn((EMBD * BLOCK, HIDDEN), generator=g) * (5 / 3) / (EMBD * BLOCK) ** 0.5)
        self.b1 = nn.Parameter(torch.randn(HIDDEN, generator=g) * 0.01)
        self.W2 = nn.Parameter(torch.randn((HIDDEN, VOCAB), generator=g))       # the bug: output layer unscaled
        self.b2 = nn.Parameter(torch.randn(VOCAB, generator=g))

    def forward(self, x):
        emb = self.C[x]                                              # (B, BLOCK, EMBD)
        h = torch.tanh(emb.view(emb.shape[0], -1) @ self.W1 + self.b1)
        return h @ self.W2 + self.b2                                 # logits over the 27 characters


def build_dataset():
    xs, ys = [], []
    for name in NAMES:
        context = [0] * BLOCK
        for ch in name + ".":
            ix = 0 if ch == "." else ord(ch) - ord("a") + 1
            xs.append(context)
            ys.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(xs), torch.tensor(ys)


X, Y = build_dataset()


def make_batch(batch_size: int):
    ix = torch.randint(0, X.shape[0], (batch_size,))
    return X[ix], Y[ix]


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)
