"""Switch-Transformer style top-1 mixture-of-experts feed-forward inside a small encoder: each token goes to
one expert scaled by its router probability, with the auxiliary load-balancing loss N * sum(f_i * P_i) and a
router z-loss added to the task loss.

Source: Hugging Face transformers, models/switch_transformers/modeling_switch_transformers.py
(SwitchTransformersTop1Router, SwitchTransformersSparseMLP, load_balancing_loss_func, router_z_loss_func),
after Fedus et al., "Switch Transformers"; no expert capacity limit (every token is kept).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, DIM, FFN, EXPERTS, HEADS, CLASSES = 64, 32, 64, 4, 4, 5
AUX_COEF, Z_COEF = 0.01, 0.001


class Top1Router(nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = nn.Linear(DIM, EXPERTS, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.02)

    def forward(self, x):
        logits = self.classifier(x)
        probs = logits.softmax(dim=-1)
        return probs, logits


class SparseMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.router = Top1Router()
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(DIM, FFN), nn.ReLU(), nn.Linear(FFN, DIM))
                                     for _ in range(EXPERTS))

    def forward(self, x):                                        # (B, T, D)
        probs, logits = self.router(x)
        top_prob, index = probs.max(dim=-1)
        out = torch.zeros_like(x)
        for i, expert in enumerate(self.experts):
            chosen = index == i
            if chosen.any():
                out[chosen] = expert(x[chosen])
        out = out * top_prob.unsqueeze(-1)                       # gradient reaches the router through here
        # load balancing: fraction of tokens sent to each expert times its mean router probability
        fraction = F.one_hot(index, EXPERTS).float().mean(dim=(0, 1))
        mean_prob = probs.mean(dim=(0, 1))
        aux = EXPERTS * (fraction * mean_prob).sum()
        z = torch.logsumexp(logits, dim=-1).pow(2).mean()
        return out, aux, z


class SwitchLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(DIM)
        self.attn = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
        self.ln2 = nn.LayerNorm(DIM)
        self.moe = SparseMLP()

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        h, aux, z = self.moe(self.ln2(x))
        return x + h, aux, z


class SwitchClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.layers = nn.ModuleList(SwitchLayer() for _ in range(2))
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, ids):
        x, aux, z = self.embed(ids), 0.0, 0.0
        for layer in self.layers:
            x, a, zz = layer(x)
            aux, z = aux + a, z + zz
        return self.head(self.norm(x).mean(dim=1)), aux, z


def build_model():
    return SwitchClassifier()


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 16))
    return ids, ids[:, :4].sum(1) % CLASSES


def loss_fn(outputs, labels):
    logits, aux, z = outputs
    return F.cross_entropy(logits, labels) + AUX_COEF * aux + Z_COEF * z


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
