"""A Llama-style model built on the meta device keeps its rotary `freqs_cis` as a plain tensor attribute.

For fast initialisation the model is created under `with torch.device("meta")`, given storage with
to_empty() and initialised with init_weights(). `freqs_cis` is neither a parameter nor a buffer, so
to_empty() leaves it on the meta device and nothing ever recomputes it: the first forward fails with a
device mismatch. The fix delayed computing freqs_cis to reset_parameters() (or it can be a buffer).

Source: https://github.com/pytorch/torchtitan/pull/164
Finds: mixed-devices @ embeddings
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, DIM, HEADS, LAYERS, MAX_SEQ = 256, 64, 4, 2, 32


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0) -> torch.Tensor:
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.polar(torch.ones_like(freqs), freqs)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = freqs_cis[: xq.shape[1]].view(1, xq.shape[1], 1, xq_.shape[-1])
    return (torch.view_as_real(xq_ * freqs_cis).flatten(3).type_as(xq),
            torch.view_as_real(xk_ * freqs_cis).flatten(3).type_as(xk))


class RotaryEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_embeddings = nn.Embedding(VOCAB, DIM)
        self.freqs_cis = precompute_freqs_cis(DIM // HEADS, MAX_SEQ * 2)     # the bug: a plain attribute

    def forward(self, tokens):
        return self.tok_embeddings(tokens), self.freqs_cis

    def init_weights(self):
        nn.init.normal_(self.tok_embeddings.weight)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(DIM, DIM, bias=False) for _ in range(4))

    def forward(self, x, freqs_cis):
        b, t, _ = x.shape
        xq, xk, xv = (w(x).view(b, t, HEADS, DIM // HEADS) for w in (self.wq, self.wk, self.wv))
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis)
        out = F.scaled_dot_product_attention(xq.transpose(1, 2), xk.transpose(1, 2), xv.transpose(1, 2),
                                             is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(b, t, DIM))


class TransformerBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention_norm, self.ffn_norm = nn.RMSNorm(DIM), nn.RMSNorm(DIM)
        self.attention = Attention()
        self.feed_forward = nn.Sequential(nn.Linear(DIM, 4 * DIM, bias=False), nn.SiLU(),
                                          nn.Linear(4 * DIM, DIM, bias=False))

    def forward(self, x, freqs_cis):
        h = x + self.attention(self.attention_norm(x), freqs_cis)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = RotaryEmbedding()
        self.layers = nn.ModuleList(TransformerBlock() for _ in range(LAYERS))
        self.norm = nn.RMSNorm(DIM)
        self.output = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, tokens):
        h, freqs_cis = self.embeddings(tokens)
        for layer in self.layers:
            h = layer(h, freqs_cis)
        return self.output(self.norm(h))

    def init_weights(self):
        self.embeddings.init_weights()
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
            elif isinstance(module, nn.RMSNorm):
                module.reset_parameters()


def build_model() -> Transformer:
    with torch.device("meta"):
        model = Transformer()                                   # no memory, no random init
    model.to_empty(device="cpu")
    model.init_weights()
    return model


def make_batch(batch_size: int):
    ids = torch.randint(0, VOCAB, (batch_size, MAX_SEQ + 1))
    return ids[:, :-1], ids[:, 1:]


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
