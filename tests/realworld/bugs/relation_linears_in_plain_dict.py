"""A relational model keeps one Linear layer per relation in a plain dict keyed by the relation id.

`self.list_relations = {}` then `self.list_relations[rel] = nn.Linear(numfeatures, numrel)` for each of the
relations: a Python dict is not an nn.ModuleDict, so none of the per-relation layers is registered, their
weights are missing from parameters() (the optimizer never sees them) and from the state_dict, and
`.to(device)` leaves them behind. The reporter expected them to be registered; the answer is nn.ModuleDict
(its keys must be strings).

Source: https://github.com/pytorch/pytorch/issues/632
Finds: unregistered-module @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

ENTITIES, RELATIONS, FEATURES, NUMREL = 200, 10, 32, 16


class RelationalScorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.entities = nn.Embedding(ENTITIES, FEATURES)
        self.list_relations = {}
        for rel in range(RELATIONS):
            self.list_relations[rel] = nn.Linear(FEATURES, NUMREL)     # the bug: a plain dict of modules
        self.tail = nn.Linear(FEATURES, NUMREL)

    def forward(self, heads, relations, tails):
        h = self.entities(heads)
        projected = torch.stack([self.list_relations[int(r)](h[i]) for i, r in enumerate(relations)])
        return (projected * self.tail(self.entities(tails))).sum(-1)      # plausibility score of each triple


def make_batch(batch_size: int):
    heads = torch.randint(0, ENTITIES, (batch_size,))
    relations = torch.randint(0, RELATIONS, (batch_size,))
    tails = torch.randint(0, ENTITIES, (batch_size,))
    true = ((heads + relations) % 7 == tails % 7).float()
    return (heads, relations, tails), true


def loss_fn(scores, true):
    return F.binary_cross_entropy_with_logits(scores, true)
