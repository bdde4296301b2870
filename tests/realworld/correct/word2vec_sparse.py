"""Skip-gram word2vec with negative sampling: two sparse nn.Embedding tables trained with SparseAdam.

Source: Andras7/word2vec-pytorch, word2vec/model.py (SkipGramModel: u/v embeddings with sparse=True, u
initialised uniform(-1/dim, 1/dim), v at zero, logsigmoid loss) and word2vec/trainer.py (optim.SparseAdam).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, DIM, NEG = 200, 32, 5


class SkipGramModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.u_embeddings = nn.Embedding(VOCAB, DIM, sparse=True)
        self.v_embeddings = nn.Embedding(VOCAB, DIM, sparse=True)
        nn.init.uniform_(self.u_embeddings.weight, -1.0 / DIM, 1.0 / DIM)
        nn.init.constant_(self.v_embeddings.weight, 0)

    def forward(self, pos_u, pos_v, neg_v):
        emb_u = self.u_embeddings(pos_u)                       # (B, D)
        emb_v = self.v_embeddings(pos_v)                       # (B, D)
        emb_neg_v = self.v_embeddings(neg_v)                   # (B, NEG, D)
        score = torch.clamp((emb_u * emb_v).sum(1), max=10, min=-10)
        neg_score = torch.clamp(torch.bmm(emb_neg_v, emb_u.unsqueeze(2)).squeeze(2), max=10, min=-10)
        return torch.mean(-F.logsigmoid(score) - torch.sum(F.logsigmoid(-neg_score), dim=1))


def make_batch(batch_size):
    centre = torch.randint(0, VOCAB, (batch_size * 4,))
    context = (centre + torch.randint(-2, 3, centre.shape)) % VOCAB    # neighbouring ids co-occur
    negatives = torch.randint(0, VOCAB, (centre.size(0), NEG))
    return (centre, context, negatives), torch.zeros(())


def loss_fn(loss, _):
    return loss


def make_optimizer(model):
    return torch.optim.SparseAdam(list(model.parameters()), lr=1e-3)
