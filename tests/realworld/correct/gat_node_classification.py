"""Graph attention network: multi-head additive attention over each node's neighbours (LeakyReLU 0.2, a
softmax per destination node computed by scatter), ELU between layers, heavy dropout.

Source: pyg-team/pytorch_geometric, torch_geometric/nn/conv/gat_conv.py (GATConv: shared linear map,
att_src / att_dst vectors, self-loops, softmax over incoming edges, attention dropout) and examples/gat.py
(8 heads of 8, dropout 0.6, Adam lr 0.005, weight decay 5e-4), after Velickovic et al., "Graph Attention
Networks".
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

NODES, FEATURES, CLASSES, EDGES = 120, 24, 4, 480


def edge_softmax(scores, dst, num_nodes):
    """Softmax of (E, H) edge scores over the edges that share a destination node."""
    heads = scores.size(1)
    index = dst.unsqueeze(-1).expand(-1, heads)
    peak = torch.full((num_nodes, heads), float("-inf")).scatter_reduce(0, index, scores, "amax")
    e = (scores - peak[dst]).exp()
    total = torch.zeros(num_nodes, heads).index_add_(0, dst, e)
    return e / total[dst]


class GATConv(nn.Module):
    def __init__(self, in_channels, out_channels, heads, concat=True, dropout=0.6):
        super().__init__()
        self.heads, self.out_channels, self.concat, self.dropout = heads, out_channels, concat, dropout
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels))
        for w in (self.lin.weight, self.att_src, self.att_dst):
            nn.init.xavier_uniform_(w)

    def forward(self, x, edge_index):
        n = x.size(0)
        loops = torch.arange(n).repeat(2, 1)
        src, dst = torch.cat([edge_index, loops], dim=1)
        h = self.lin(x).view(n, self.heads, self.out_channels)
        alpha = (h * self.att_src).sum(-1)[src] + (h * self.att_dst).sum(-1)[dst]      # (E, H)
        alpha = edge_softmax(F.leaky_relu(alpha, 0.2), dst, n)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = torch.zeros_like(h).index_add_(0, dst, h[src] * alpha.unsqueeze(-1))
        out = out.reshape(n, -1) if self.concat else out.mean(dim=1)
        return out + self.bias


class GAT(nn.Module):
    def __init__(self, hidden=8, heads=8, dropout=0.6):
        super().__init__()
        self.dropout = dropout
        self.conv1 = GATConv(FEATURES, hidden, heads, dropout=dropout)
        self.conv2 = GATConv(hidden * heads, CLASSES, heads=1, concat=False, dropout=dropout)

    def forward(self, x, edge_index):
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)


_g = torch.Generator().manual_seed(2)
LABELS = torch.randint(0, CLASSES, (NODES,), generator=_g)
X = torch.randn(NODES, FEATURES, generator=_g) + F.one_hot(LABELS, FEATURES).float() * 2
_e = torch.randint(0, NODES, (2, EDGES // 2), generator=_g)
EDGE_INDEX = torch.cat([_e, _e.flip(0)], dim=1)
TRAIN_MASK = torch.zeros(NODES, dtype=torch.bool)
TRAIN_MASK[torch.randperm(NODES, generator=_g)[:40]] = True


def build_model():
    return GAT()


def make_batch(batch_size):
    return (X, EDGE_INDEX), LABELS


def loss_fn(logits, labels):
    return F.cross_entropy(logits[TRAIN_MASK], labels[TRAIN_MASK])


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
