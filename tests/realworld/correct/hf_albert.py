"""ALBERT classifier: factorised embeddings (16 -> 32) and one transformer layer shared across all layers.

Source: Hugging Face transformers, AlbertForSequenceClassification (models/albert/modeling_albert.py).
Finds: nothing
"""
import torch
from transformers import AlbertConfig, AlbertForSequenceClassification

VOCAB = 128


def build_model():
    config = AlbertConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=32, num_hidden_layers=3,
                          num_hidden_groups=1, num_attention_heads=4, intermediate_size=64,
                          max_position_embeddings=64, num_labels=4, classifier_dropout_prob=0.1)
    return AlbertForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 20))
    types = torch.zeros_like(ids)
    types[:, 10:] = 1                              # sentence pair: A then B
    labels = torch.randint(0, 4, (batch_size,))
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": torch.ones_like(ids)}, labels


def loss_fn(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs.logits, targets)


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
