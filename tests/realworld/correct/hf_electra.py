"""ELECTRA discriminator pre-training: per-token replaced/original binary labels, tiny config.

Source: Hugging Face transformers, ElectraForPreTraining (models/electra/modeling_electra.py).
Finds: nothing
"""
import torch
from transformers import ElectraConfig, ElectraForPreTraining

VOCAB = 128


def build_model():
    config = ElectraConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    return ElectraForPreTraining(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    replaced = (torch.rand(ids.shape) < 0.15).long()       # tokens a generator swapped out
    ids = torch.where(replaced.bool(), torch.randint(0, VOCAB, ids.shape), ids)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": replaced}, replaced


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, eps=1e-6)
