"""Gemma causal LM (RMSNorm with a (1 + weight) scale initialised at zero, GeGLU, scaled embeddings), tiny config.

Source: Hugging Face transformers, GemmaForCausalLM (models/gemma/modeling_gemma.py).
Finds: nothing
"""
import torch
from transformers import GemmaConfig, GemmaForCausalLM

VOCAB = 128


def build_model():
    config = GemmaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, head_dim=8,
                         max_position_embeddings=128, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    return GemmaForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(3, VOCAB, (batch_size, 20))
    ids[:, 0] = 2                                   # every sequence starts with <bos>
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.0)
