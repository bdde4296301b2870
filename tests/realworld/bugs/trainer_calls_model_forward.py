"""An NLP library's trainer runs `model.forward(**batch)` instead of `model(**batch)`.

The trainer (and the predictors) invoked the model's forward method directly. That skips nn.Module.__call__,
so every forward pre-hook and hook registered on the model (profilers, debuggers, pruning, ...) is
silently bypassed. The maintainers agreed to switch to `model(**inputs)`.

Source: https://github.com/allenai/allennlp/issues/456
Finds: forward-called-directly @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, SEQ, DIM, LABELS = 200, 20, 32, 3


class BagOfEmbeddingsClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedder = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.encoder = nn.LSTM(DIM, DIM, batch_first=True)
        self.projection = nn.Linear(DIM, LABELS)

    def forward(self, tokens, mask, label=None):
        encoded, _ = self.encoder(self.embedder(tokens))
        pooled = (encoded * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        output_dict = {"logits": self.projection(pooled)}
        if label is not None:
            output_dict["loss"] = F.cross_entropy(output_dict["logits"], label)
        return output_dict


def make_batch(batch_size: int):
    tokens = torch.randint(1, VOCAB, (batch_size, SEQ))
    mask = torch.ones(batch_size, SEQ)
    label = torch.randint(0, LABELS, (batch_size,))
    return {"tokens": tokens, "mask": mask, "label": label}, label


def train_step(model, batch, optimizer, loss_fn):
    inputs, _ = batch
    optimizer.zero_grad()
    output_dict = model.forward(**inputs)                       # the bug: should be model(**inputs)
    loss = output_dict["loss"]
    loss.backward()
    optimizer.step()
    return loss
