"""A BERT text classifier ends its forward in a softmax, then trains with nn.CrossEntropyLoss: softmax twice.

The repository fine-tunes BERT for text classification: the pooled [CLS] output goes through a linear
classifier and the forward returns `torch.softmax(logits, dim=1)`, and the training loop feeds those
probabilities to `nn.CrossEntropyLoss()`, which applies log_softmax itself. The report: the loss fell very
slowly, and on small, imbalanced data the model leaned towards the majority class; the probabilities squashed
into [0, 1] flatten the second softmax, so the loss cannot go below log(1 + (C-1)/e) and the gradients shrink.
The fix removes the softmax from the model and applies it only when probabilities are wanted at inference.

Source: https://github.com/illiterate/BertClassifier/issues/2
Finds: loss-input-mismatch
"""
import torch
from torch import nn
from transformers import BertConfig, BertModel

from probes import Probe

VOCAB, CLASSES, SEQ = 200, 3, 16


class BertClassifier(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.bert = BertModel(config)                    # a small config instead of the pretrained weights
        self.classifier = nn.Linear(config.hidden_size, CLASSES)

    def forward(self, input_ids, attention_mask):
        pooled = self.bert(input_ids=input_ids, attention_mask=attention_mask)[1]     # the [CLS] pooled output
        logits = self.classifier(pooled)
        return torch.softmax(logits, dim=1)


def batch(n):
    labels = torch.randint(0, CLASSES, (n,))
    words = VOCAB // CLASSES                             # each class draws its words from its own range
    ids = labels[:, None] * words + torch.randint(0, words, (n, SEQ))
    return ids, torch.ones_like(ids), labels


def train(run_dir):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertClassifier(config)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(30):
            ids, mask, labels = batch(16)
            probs = model(ids, mask)
            loss = criterion(probs, labels)              # the bug: probabilities where logits belong
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
