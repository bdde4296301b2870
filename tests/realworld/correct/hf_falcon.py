"""Falcon causal LM (multi-query attention, parallel attention/MLP, rotary), tiny config.

Source: Hugging Face transformers, FalconForCausalLM (models/falcon/modeling_falcon.py).
Finds: nothing
"""
import torch
from transformers import FalconConfig, FalconForCausalLM

VOCAB = 128


def build_model():
    config = FalconConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          multi_query=True, parallel_attn=True, alibi=False, bias=False,
                          max_position_embeddings=128)
    return FalconForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 20))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
