"""An early Llama port caches the rotary cos/sin tables as plain tensor attributes, which .to() and loading skip.

LlamaRotaryEmbedding computed `self.cos_cached` and `self.sin_cached` in __init__ as ordinary attributes,
not buffers, so model.to(device) never moved them (they were copied to the GPU on every forward). Built
the memory-saving way, under `torch.device("meta")` and then filled from a checkpoint with
load_state_dict(assign=True), the tables stay on the meta device: no checkpoint holds them, and the first
forward fails. The fix registered them as non-persistent buffers.

Source: https://github.com/huggingface/transformers/pull/22234
Finds: mixed-devices @ model.layers.0.self_attn.rotary_emb
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, DIM, HEADS, LAYERS, MAX_POS = 256, 64, 4, 2, 64


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim: int, max_position_embeddings: int = MAX_POS, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)
        self.max_seq_len_cached = max_position_embeddings
        t = torch.arange(self.max_seq_len_cached, dtype=self.inv_freq.dtype)
        emb = torch.cat([torch.outer(t, self.inv_freq)] * 2, dim=-1)
        self.cos_cached = emb.cos()[None, None, :, :]           # the bug: plain attributes, not buffers
        self.sin_cached = emb.sin()[None, None, :, :]

    def forward(self, x, seq_len: int):
        return (self.cos_cached[:, :, :seq_len, ...].to(dtype=x.dtype, device=x.device),
                self.sin_cached[:, :, :seq_len, ...].to(dtype=x.dtype, device=x.device))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(DIM, DIM, bias=False) for _ in range(4))
        self.rotary_emb = LlamaRotaryEmbedding(DIM // HEADS)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, HEADS, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        cos, sin = self.rotary_emb(v, seq_len=t)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, DIM))


class LlamaDecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm, self.post_attention_layernorm = nn.RMSNorm(DIM), nn.RMSNorm(DIM)
        self.self_attn = LlamaAttention()
        self.mlp = nn.Sequential(nn.Linear(DIM, 2 * DIM, bias=False), nn.SiLU(), nn.Linear(2 * DIM, DIM, bias=False))

    def forward(self, x):
        h = x + self.self_attn(self.input_layernorm(x))
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, DIM)
        self.layers = nn.ModuleList(LlamaDecoderLayer() for _ in range(LAYERS))
        self.norm = nn.RMSNorm(DIM)

    def forward(self, ids):
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h)
        return self.norm(h)


class LlamaForCausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = LlamaModel()
        self.lm_head = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, ids):
        return self.lm_head(self.model(ids))


def build_model() -> LlamaForCausalLM:
    checkpoint = LlamaForCausalLM().state_dict()                # stands in for torch.load("weights.bin")
    with torch.device("meta"):
        model = LlamaForCausalLM()
    model.load_state_dict(checkpoint, assign=True)
    return model


def make_batch(batch_size: int):
    ids = torch.randint(0, VOCAB, (batch_size, 33))
    return ids[:, :-1], ids[:, 1:]


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
