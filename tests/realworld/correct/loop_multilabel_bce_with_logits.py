"""Multi-label text classification: raw logits and multi-hot float labels into nn.BCEWithLogitsLoss.

Source: Hugging Face transformers, BertForSequenceClassification (models/bert/modeling_bert.py): with
problem_type "multi_label_classification" the logits go to BCEWithLogitsLoss() against float labels; a
mean-pooled embedding encoder stands in for BERT.
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe

VOCAB, LABELS, SEQ = 400, 6, 20


class TagClassifier(nn.Module):
    def __init__(self, dim=48):
        super().__init__()
        self.embeddings = nn.Embedding(VOCAB, dim)
        self.encoder = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(dim, LABELS)

    def forward(self, input_ids):
        pooled = self.encoder(self.embeddings(input_ids).mean(1))
        return self.classifier(self.dropout(pooled))


def batch(n):
    ids = torch.randint(0, VOCAB, (n, SEQ))
    labels = torch.stack([(ids % LABELS == k).float().mean(1) > 1.2 / LABELS for k in range(LABELS)], 1)
    return ids, labels.float()                               # several tags a text, as 0/1 floats


def train(run_dir):
    torch.manual_seed(0)
    model = TagClassifier()
    loss_fct = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(30):
            ids, labels = batch(32)
            logits = model(ids)
            loss = loss_fct(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
