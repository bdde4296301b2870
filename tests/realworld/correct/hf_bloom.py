"""BLOOM causal LM (ALiBi position biases, LayerNorm after the word embeddings), tiny config.

Source: Hugging Face transformers, BloomForCausalLM (models/bloom/modeling_bloom.py).
Finds: nothing
"""
import torch
from transformers import BloomConfig, BloomForCausalLM

VOCAB = 128


def build_model():
    config = BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4, pad_token_id=3)
    return BloomForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(4, VOCAB, (batch_size, 20))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.1, betas=(0.9, 0.95))
