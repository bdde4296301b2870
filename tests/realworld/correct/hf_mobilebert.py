"""MobileBERT classifier: bottlenecked transformer (inter 32 / intra 16), stacked FFNs and NoNorm, tiny config.

Source: Hugging Face transformers, MobileBertForSequenceClassification (models/mobilebert/modeling_mobilebert.py).
Finds: nothing
"""
import torch
from transformers import MobileBertConfig, MobileBertForSequenceClassification

VOCAB = 128


def build_model():
    config = MobileBertConfig(vocab_size=VOCAB, hidden_size=32, embedding_size=16, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=32, true_hidden_size=16,
                              intra_bottleneck_size=16, num_feedforward_networks=2, normalization_type="no_norm",
                              max_position_embeddings=64, num_labels=2)
    return MobileBertForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 20))
    labels = torch.randint(0, 2, (batch_size,))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
