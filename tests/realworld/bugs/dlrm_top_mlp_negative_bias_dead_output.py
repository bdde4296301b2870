"""A recommendation benchmark's DLRM draws each layer's bias from N(0, 1/m): the one-unit output ReLU is dead.

DLRM's create_mlp fills every Linear with "custom Xavier" weights, std sqrt(2/(m+n)), and biases with std
sqrt(1/m), m the layer's output size. The benchmark configuration ends the top MLP in a ReLU
(sigmoid_top=-1) on a single output unit, so that unit's bias is a standard normal draw; with the benchmark's
seed it comes out negative, larger than anything the small features can outweigh, and the output is 0 for
every sample: the gradient of every layer is zero and nothing trains (the report printed an all-zero output
and an all-zero derivative for the first layer). The fix initialises the biases to zero.

Source: https://github.com/pytorch/benchmark/pull/1927
Finds: dead-units @ top_l.5
"""
import numpy as np
import torch
from torch import nn

LN_EMB = (1000, 1000, 1000, 1000)
M_SPA, M_DEN = 16, 13
LN_BOT = (M_DEN, 64, M_SPA)
NUM_FEA = len(LN_EMB) + 1
LN_TOP = (NUM_FEA * (NUM_FEA - 1) // 2 + M_SPA, 64, 32, 1)
INDICES_PER_LOOKUP = 10


class DLRM_Net(nn.Module):
    def create_mlp(self, ln, sigmoid_layer):
        layers = nn.ModuleList()
        for i in range(0, len(ln) - 1):
            n, m = ln[i], ln[i + 1]
            LL = nn.Linear(int(n), int(m), bias=True)
            mean = 0.0
            std_dev = np.sqrt(2 / (m + n))
            W = np.random.normal(mean, std_dev, size=(m, n)).astype(np.float32)
            std_dev = np.sqrt(1 / m)                    # the bug: bias ~ N(0, 1/m), N(0, 1) for the output unit
            bt = np.random.normal(mean, std_dev, size=m).astype(np.float32)
            LL.weight.data = torch.tensor(W, requires_grad=True)
            LL.bias.data = torch.tensor(bt, requires_grad=True)
            layers.append(LL)
            layers.append(nn.Sigmoid() if i == sigmoid_layer else nn.ReLU())
        return torch.nn.Sequential(*layers)

    def create_emb(self, m, ln):
        emb_l = nn.ModuleList()
        for n in ln:
            EE = nn.EmbeddingBag(n, m, mode="sum", sparse=False)
            W = np.random.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 / n), size=(n, m)).astype(np.float32)
            EE.weight.data = torch.tensor(W, requires_grad=True)
            emb_l.append(EE)
        return emb_l

    def __init__(self, sigmoid_bot=-1, sigmoid_top=-1):
        super().__init__()
        np.random.seed(123)                             # the benchmark's numpy_rand_seed
        self.emb_l = self.create_emb(M_SPA, LN_EMB)
        self.bot_l = self.create_mlp(LN_BOT, sigmoid_bot)
        self.top_l = self.create_mlp(LN_TOP, sigmoid_top)

    def interact_features(self, x, ly):
        batch_size, d = x.shape
        T = torch.cat([x] + ly, dim=1).view((batch_size, -1, d))
        Z = torch.bmm(T, torch.transpose(T, 1, 2))
        li, lj = torch.tril_indices(NUM_FEA, NUM_FEA, offset=-1)
        return torch.cat([x, Z[:, li, lj]], dim=1)

    def forward(self, dense_x, lS_o, lS_i):
        x = self.bot_l(dense_x)
        ly = [self.emb_l[k](lS_i[k], lS_o[k]) for k in range(len(LN_EMB))]
        return self.top_l(self.interact_features(x, ly))


def make_batch(batch_size: int):
    dense_x = torch.rand(batch_size, M_DEN)
    lS_o = torch.stack([torch.arange(batch_size) * INDICES_PER_LOOKUP] * len(LN_EMB))
    lS_i = torch.stack([torch.randint(0, n, (batch_size * INDICES_PER_LOOKUP,)) for n in LN_EMB])
    return (dense_x, lS_o, lS_i), torch.rand(batch_size, 1).round()


def loss_fn(gen, targets):
    return torch.nn.functional.mse_loss(gen, targets)   # the benchmark's train loss


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.01)
