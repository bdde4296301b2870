"""A transfer-learning framework's regression head squeezes its logits to (B,) for the loss; labels stay (B, 1).

A user fine-tuning DistilBERT for document regression (labels from 0 to 16) with the framework's
`RegressionHead([768, 1])` got "Using a target size (torch.Size([32, 1])) that is different to the input size
(torch.Size([32]))" during training. The maintainers traced it to the head: `logits_to_loss` squeezed the
logits to one value a document, the label tensor was not squeezed, and the per-sample
MSELoss(reduction="none") broadcast the two to a (32, 32) matrix before averaging, so each prediction was
pulled towards every label of the batch.

Source: https://github.com/deepset-ai/FARM/issues/229
Finds: loss-shape-broadcast
"""
import torch
from torch import nn

from probes import Probe

VOCAB, DIM, SEQ = 500, 32, 24


class RegressionHead(nn.Module):
    def __init__(self, layer_dims):
        super().__init__()
        self.feed_forward = nn.Sequential(nn.Linear(layer_dims[0], layer_dims[0]), nn.ReLU(),
                                          nn.Linear(layer_dims[0], layer_dims[1]))
        self.loss_fct = nn.MSELoss(reduction="none")

    def forward(self, x):
        return self.feed_forward(x)                          # (B, 1)

    def logits_to_loss(self, logits, label_ids):
        # squeeze the logits to one value a document...
        return self.loss_fct(logits.squeeze(), label_ids.float())   # the bug: ...against (B, 1) labels: (B, B)


class AdaptiveModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(VOCAB, DIM)          # a small encoder stands in for DistilBERT
        layer = nn.TransformerEncoderLayer(DIM, 4, 64, 0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1)
        self.head = RegressionHead([DIM, 1])

    def forward(self, input_ids):
        hidden = self.encoder(self.embeddings(input_ids))
        return self.head(hidden.mean(1))                     # mean-pooled token vectors


def batch(n):
    labels = torch.randint(0, 17, (n, 1)).float()            # (B, 1): a score from 0 to 16
    positive = torch.rand(n, SEQ) < labels / 16               # higher scores use more "positive" words
    ids = torch.where(positive, torch.randint(1, 40, (n, SEQ)), torch.randint(40, VOCAB, (n, SEQ)))
    return ids, labels


def train(run_dir):
    torch.manual_seed(0)
    model = AdaptiveModel()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(40):
            ids, labels = batch(16)
            logits = model(ids)
            per_sample = model.head.logits_to_loss(logits, labels)
            loss = per_sample.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
