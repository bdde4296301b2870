"""Two-layer GCN for semi-supervised node classification: symmetric-normalised message passing over an edge
list with self-loops, the loss on the labelled nodes only.

Source: pyg-team/pytorch_geometric, torch_geometric/nn/conv/gcn_conv.py (GCNConv: gcn_norm with added self-loops,
x @ W then scatter-add of deg^-1/2 * deg^-1/2 weighted messages, bias after aggregation) and examples/gcn.py
(hidden 16, dropout 0.5, Adam lr 0.01, weight decay 5e-4 on the first layer).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

NODES, FEATURES, CLASSES, EDGES = 120, 24, 4, 480


def gcn_norm(edge_index, num_nodes):
    loops = torch.arange(num_nodes).repeat(2, 1)
    edge_index = torch.cat([edge_index, loops], dim=1)
    src, dst = edge_index
    deg = torch.zeros(num_nodes).index_add_(0, dst, torch.ones(dst.numel()))
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt[torch.isinf(inv_sqrt)] = 0.0
    return edge_index, inv_sqrt[src] * inv_sqrt[dst]


class GCNConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.xavier_uniform_(self.lin.weight)       # glorot, as PyG initialises

    def forward(self, x, edge_index, edge_weight):
        h = self.lin(x)
        src, dst = edge_index
        out = torch.zeros_like(h).index_add_(0, dst, h[src] * edge_weight.unsqueeze(-1))
        return out + self.bias


class GCN(nn.Module):
    def __init__(self, hidden=16, dropout=0.5):
        super().__init__()
        self.conv1 = GCNConv(FEATURES, hidden)
        self.conv2 = GCNConv(hidden, CLASSES)
        self.dropout = dropout

    def forward(self, x, edge_index):
        edge_index, weight = gcn_norm(edge_index, x.size(0))
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.conv1(x, edge_index, weight))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index, weight)


# one fixed graph, as in a transductive Planetoid split: features tied to the labels, undirected edges
_g = torch.Generator().manual_seed(1)
LABELS = torch.randint(0, CLASSES, (NODES,), generator=_g)
X = torch.randn(NODES, FEATURES, generator=_g) + F.one_hot(LABELS, FEATURES).float() * 2
_e = torch.randint(0, NODES, (2, EDGES // 2), generator=_g)
EDGE_INDEX = torch.cat([_e, _e.flip(0)], dim=1)
TRAIN_MASK = torch.zeros(NODES, dtype=torch.bool)
TRAIN_MASK[torch.randperm(NODES, generator=_g)[:40]] = True


def build_model():
    return GCN()


def make_batch(batch_size):
    return (X, EDGE_INDEX), LABELS          # full-batch training: the whole graph every step


def loss_fn(logits, labels):
    return F.cross_entropy(logits[TRAIN_MASK], labels[TRAIN_MASK])


def make_optimizer(model):
    return torch.optim.Adam([{"params": model.conv1.parameters(), "weight_decay": 5e-4},
                             {"params": model.conv2.parameters(), "weight_decay": 0.0}], lr=0.01)
