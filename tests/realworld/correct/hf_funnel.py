"""Funnel Transformer classifier: the sequence is pooled to half its length between blocks, tiny config.

Source: Hugging Face transformers, FunnelForSequenceClassification (models/funnel/modeling_funnel.py).
Finds: nothing
"""
import torch
from transformers import FunnelConfig, FunnelForSequenceClassification


def build_model():
    config = FunnelConfig(vocab_size=128, block_sizes=[1, 1], block_repeats=None, num_decoder_layers=1,
                          d_model=32, n_head=4, d_head=8, d_inner=64, hidden_dropout=0.1, attention_dropout=0.1,
                          activation_dropout=0.0, max_position_embeddings=64, num_labels=3)
    return FunnelForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(0, 128, (batch_size, 16))
    ids[:, 0] = 2                                     # <cls>
    labels = torch.randint(0, 3, (batch_size,))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
