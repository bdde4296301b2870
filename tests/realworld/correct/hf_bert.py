"""BERT for sequence classification, built from a small config (no downloaded weights).

Source: Hugging Face transformers, BertForSequenceClassification (models/bert/modeling_bert.py).
Finds: nothing
"""
import torch
from transformers import BertConfig, BertForSequenceClassification


def build_model():
    config = BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3)
    return BertForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(0, 128, (batch_size, 16))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, torch.randint(0, 3, (batch_size,))


def loss_fn(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs.logits, targets)


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
