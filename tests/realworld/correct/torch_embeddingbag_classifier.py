"""Bag-of-words text classifier on nn.EmbeddingBag (flat token stream + offsets, mean mode), SGD with clipping.

Source: PyTorch, torch.nn.EmbeddingBag (torch/nn/modules/sparse.py) as in the TextClassificationModel of
pytorch/tutorials beginner_source/text_sentiment_ngrams_tutorial.py.
Finds: nothing
"""
import torch
from torch import nn

VOCAB, CLASSES = 200, 4


class TextClassificationModel(nn.Module):
    def __init__(self, embed_dim=32):
        super().__init__()
        self.embedding = nn.EmbeddingBag(VOCAB, embed_dim, mode="mean")
        self.fc = nn.Linear(embed_dim, CLASSES)
        self.embedding.weight.data.uniform_(-0.5, 0.5)
        self.fc.weight.data.uniform_(-0.5, 0.5)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        return self.fc(self.embedding(text, offsets))


def make_batch(batch_size):
    lengths = torch.randint(3, 15, (batch_size,))
    text = torch.randint(0, VOCAB, (int(lengths.sum()),))
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    return (text, offsets), torch.randint(0, CLASSES, (batch_size,))


def train_step(model, batch, optimizer, loss_fn):
    (text, offsets), label = batch
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(text, offsets), label)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    optimizer.step()
    return loss


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=5.0)
