"""Discriminative fine-tuning: the embedding frozen (requires_grad False, left out of the optimizer), the
encoder at a tenth of the head's learning rate, each in its own parameter group.

Source: the ULMFiT recipe as fastai implements it (fastai/text/learner.py text_classifier_learner with
freeze_to and discriminative lrs via slice(lr / 10, lr), after Howard & Ruder, "Universal Language Model
Fine-tuning for Text Classification"); written here as plain PyTorch parameter groups.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

VOCAB, EMB, HIDDEN, CLASSES = 200, 32, 48, 3


class TextClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMB, padding_idx=0)
        self.encoder = nn.LSTM(EMB, HIDDEN, num_layers=2, batch_first=True, dropout=0.1)
        self.head = nn.Sequential(nn.Linear(2 * HIDDEN, HIDDEN), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(HIDDEN, CLASSES))

    def forward(self, ids):
        out, _ = self.encoder(self.embedding(ids))
        pooled = torch.cat([out[:, -1], out.max(dim=1).values], dim=-1)      # last + max pool (concat pooling)
        return self.head(pooled)


def train(run_dir):
    torch.manual_seed(0)
    model = TextClassifier()
    model.embedding.weight.requires_grad_(False)              # "pretrained" embedding, kept frozen
    base_lr = 2e-3
    optimizer = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": base_lr / 10},
                                   {"params": model.head.parameters(), "lr": base_lr}], weight_decay=0.01)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            ids = torch.randint(1, VOCAB, (16, 20))
            y = (ids[:, :5] % CLASSES).mode(dim=1).values
            loss = F.cross_entropy(model(ids), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
