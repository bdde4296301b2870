"""Attention-based pointer decoder for routing: already-visited nodes masked to -inf before log_softmax, so its
log-probabilities are -inf there by design; trained on the log-likelihood of the chosen (unvisited) node.

Source: wouterkool/attention-learn-to-route, nets/attention_model.py (AttentionModel._one_to_many_logits:
compatibility[mask] = -inf, tanh clipping at 10, log_softmax over nodes), after Kool et al., "Attention, Learn
to Solve Routing Problems!".
Finds: nothing
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

NODES, DIM = 10, 32


class PointerHead(nn.Module):
    """One decoding step: a glimpse over the nodes, then log-probabilities of visiting each next."""

    def __init__(self, dim=DIM, heads=4, tanh_clipping=10.0):
        super().__init__()
        self.glimpse = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.project_key = nn.Linear(dim, dim, bias=False)
        self.tanh_clipping = tanh_clipping

    def forward(self, context, nodes, visited):
        g = self.glimpse(context.unsqueeze(1), nodes, nodes, key_padding_mask=visited, need_weights=False)[0]
        logits = (g @ self.project_key(nodes).transpose(1, 2)).squeeze(1) / math.sqrt(nodes.size(-1))
        logits = torch.tanh(logits) * self.tanh_clipping
        logits = logits.masked_fill(visited, -math.inf)       # a visited node can never be chosen
        return F.log_softmax(logits, dim=-1)


class AttentionModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.init_embed = nn.Linear(2, DIM)
        layer = nn.TransformerEncoderLayer(DIM, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.context = nn.Linear(2 * DIM, DIM)
        self.pointer = PointerHead()

    def forward(self, coords, current, visited):
        nodes = self.encoder(self.init_embed(coords))
        graph = nodes.mean(1)
        here = nodes[torch.arange(coords.size(0)), current]
        return self.pointer(self.context(torch.cat([graph, here], -1)), nodes, visited)


def build_model():
    return AttentionModel()


def make_batch(batch_size):
    coords = torch.rand(batch_size, NODES, 2)
    visited = torch.rand(batch_size, NODES) < 0.4
    visited[:, 0] = True                                      # the depot / start node is always visited
    current = torch.zeros(batch_size, dtype=torch.long)
    # target: the nearest unvisited node (an expert's greedy choice to imitate)
    dist = (coords - coords[:, :1]).norm(dim=-1).masked_fill(visited, math.inf)
    return (coords, current, visited), dist.argmin(1)


def loss_fn(log_p, target):
    return -log_p.gather(1, target.unsqueeze(1)).mean()


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-4)
