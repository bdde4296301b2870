"""DistilBERT sentence classifier (pre-classifier Linear + ReLU + dropout on the [CLS] token), tiny config.

Source: Hugging Face transformers, DistilBertForSequenceClassification (models/distilbert/modeling_distilbert.py).
Finds: nothing
"""
import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification

VOCAB = 128


def build_model():
    config = DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                              max_position_embeddings=64, num_labels=2, seq_classif_dropout=0.2)
    return DistilBertForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(1, VOCAB, (batch_size, 24))
    mask = torch.ones_like(ids)
    mask[: batch_size // 2, 18:] = 0               # half the batch padded
    ids = ids.masked_fill(mask == 0, 0)
    labels = torch.randint(0, 2, (batch_size,))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
