"""A session recommender keeps the per-layer weights of its two graph convolutions in plain dicts.

COTREC encodes items on an item graph (ItemConv) and sessions on a session graph (SessConv); each builds
its layer weights in a loop as `self.w_item['weight_item%d' % i] = nn.Linear(...)` (and `self.w_sess[...]`)
into a `{}` attribute. A plain dict registers nothing: the Linear layers are applied in forward, but
parameters() never lists them, so the optimizer leaves them at their random start (and they are not saved).
The reporter: "they would not be trained"; the authors switched to nn.ModuleList and got slightly better
results.

Source: https://github.com/xiaxin1998/COTREC/issues/15
Finds: unregistered-module @ ItemGraph, unregistered-module @ SessGraph
"""
import torch
from torch import nn
from torch.nn import functional as F

N_ITEMS, DIM, LAYERS, SESSION_LEN = 120, 32, 2, 6


def item_adjacency(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, n, generator=g) < 0.05).float()
    a = ((a + a.T) > 0).float() + torch.eye(n)
    return a / a.sum(0, keepdim=True)                  # column-normalised, as in the paper's item graph


class ItemConv(nn.Module):
    def __init__(self, layers, emb_size=DIM):
        super().__init__()
        self.emb_size = emb_size
        self.layers = layers
        self.w_item = {}                                # the bug: a plain dict, not nn.ModuleDict
        for i in range(self.layers):
            self.w_item["weight_item%d" % i] = nn.Linear(self.emb_size, self.emb_size, bias=False)

    def forward(self, adjacency, embedding):
        final = [embedding]
        for i in range(self.layers):
            embedding = adjacency @ self.w_item["weight_item%d" % i](embedding)
            final.append(F.normalize(embedding, dim=-1, p=2))
        return torch.stack(final).sum(0) / (self.layers + 1)


class SessConv(nn.Module):
    def __init__(self, layers, emb_size=DIM):
        super().__init__()
        self.emb_size = emb_size
        self.layers = layers
        self.w_sess = {}                                # same bug in the session-graph encoder
        for i in range(self.layers):
            self.w_sess["weight_sess%d" % i] = nn.Linear(self.emb_size, self.emb_size, bias=False)

    def forward(self, item_embedding, sessions):
        seq_h = item_embedding[sessions].mean(1)                            # (batch, dim)
        one_hot = F.one_hot(sessions, N_ITEMS).amax(1).float()              # items each session holds
        overlap = one_hot @ one_hot.T                                       # sessions sharing items
        da = overlap / overlap.sum(1, keepdim=True)
        final = [F.normalize(seq_h, dim=-1, p=2)]
        for i in range(self.layers):
            seq_h = da @ self.w_sess["weight_sess%d" % i](seq_h)
            final.append(F.normalize(seq_h, dim=-1, p=2))
        return torch.stack(final).sum(0) / (self.layers + 1)


class COTREC(nn.Module):
    def __init__(self, n_node=N_ITEMS, emb_size=DIM, layers=LAYERS):
        super().__init__()
        self.embedding = nn.Embedding(n_node, emb_size)
        self.register_buffer("adjacency", item_adjacency(n_node))
        self.ItemGraph = ItemConv(layers, emb_size)
        self.SessGraph = SessConv(layers, emb_size)
        nn.init.uniform_(self.embedding.weight, -emb_size ** -0.5, emb_size ** -0.5)

    def forward(self, sessions):
        item_emb = self.ItemGraph(self.adjacency, self.embedding.weight)
        sess_item_view = item_emb[sessions].mean(1)
        sess_sess_view = self.SessGraph(self.embedding.weight, sessions)
        return (sess_item_view + sess_sess_view) @ item_emb.T                # scores over all items


def make_batch(batch_size: int):
    sessions = torch.randint(0, N_ITEMS, (batch_size, SESSION_LEN))
    next_item = (sessions[:, -1] + 1) % N_ITEMS
    return sessions, next_item
