"""A factorization-machine library's attention layer calls F.dropout without training=self.training.

AttentionalFactorizationMachine applies `F.dropout(attn_scores, p=...)` and `F.dropout(attn_output, p=...)`.
The functional form defaults to training=True, so the dropout keeps zeroing attention weights after
`model.eval()`: validation and test AUCs are computed with random dropout masks and change from run to run.
The report: add `training=self.training` so model.train() enables it and model.eval() disables it.

Source: https://github.com/rixwew/pytorch-fm/issues/21
Finds: eval-mode-missing @ afm
"""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

FIELD_DIMS = (20, 30, 15, 40, 12)


class FeaturesEmbedding(nn.Module):
    def __init__(self, field_dims, embed_dim):
        super().__init__()
        self.embedding = nn.Embedding(sum(field_dims), embed_dim)
        self.register_buffer("offsets", torch.tensor((0, *np.cumsum(field_dims)[:-1]), dtype=torch.long))
        nn.init.xavier_uniform_(self.embedding.weight.data)

    def forward(self, x):
        return self.embedding(x + self.offsets.unsqueeze(0))


class FeaturesLinear(nn.Module):
    def __init__(self, field_dims):
        super().__init__()
        self.fc = nn.Embedding(sum(field_dims), 1)
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("offsets", torch.tensor((0, *np.cumsum(field_dims)[:-1]), dtype=torch.long))

    def forward(self, x):
        return self.fc(x + self.offsets.unsqueeze(0)).sum(dim=1) + self.bias


class AttentionalFactorizationMachine(nn.Module):
    def __init__(self, embed_dim, attn_size, dropouts):
        super().__init__()
        self.attention = nn.Linear(embed_dim, attn_size)
        self.projection = nn.Linear(attn_size, 1)
        self.fc = nn.Linear(embed_dim, 1)
        self.dropouts = dropouts

    def forward(self, x):
        num_fields = x.shape[1]
        row, col = zip(*[(i, j) for i in range(num_fields - 1) for j in range(i + 1, num_fields)])
        inner_product = x[:, list(row)] * x[:, list(col)]
        attn_scores = F.relu(self.attention(inner_product))
        attn_scores = F.softmax(self.projection(attn_scores), dim=1)
        attn_scores = F.dropout(attn_scores, p=self.dropouts[0])                # the bug: always training=True
        attn_output = torch.sum(attn_scores * inner_product, dim=1)
        attn_output = F.dropout(attn_output, p=self.dropouts[1])
        return self.fc(attn_output)


class AttentionalFactorizationMachineModel(nn.Module):
    def __init__(self, field_dims=FIELD_DIMS, embed_dim=16, attn_size=16, dropouts=(0.2, 0.2)):
        super().__init__()
        self.embedding = FeaturesEmbedding(field_dims, embed_dim)
        self.linear = FeaturesLinear(field_dims)
        self.afm = AttentionalFactorizationMachine(embed_dim, attn_size, dropouts)

    def forward(self, x):
        x = self.linear(x) + self.afm(self.embedding(x))
        return torch.sigmoid(x.squeeze(1))


def make_batch(batch_size: int):
    x = torch.stack([torch.randint(0, d, (batch_size,)) for d in FIELD_DIMS], dim=1)
    clicked = ((x[:, 0] % 3 == 0) ^ (x[:, 3] > 20)).float()
    return x, clicked


def loss_fn(prob, target):
    return F.binary_cross_entropy(prob, target)


def eval_step(model, batch):
    x, target = batch
    model.eval()                                        # the user does switch to eval mode ...
    with torch.no_grad():
        prob = model(x)                                 # ... but the attention dropout ignores it
    model.train()
    return float(((prob > 0.5).float() == target).float().mean())
