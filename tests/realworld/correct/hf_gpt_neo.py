"""GPT-Neo causal LM alternating global and local (windowed) attention layers, tiny config.

Source: Hugging Face transformers, GPTNeoForCausalLM (models/gpt_neo/modeling_gpt_neo.py).
Finds: nothing
"""
import torch
from transformers import GPTNeoConfig, GPTNeoForCausalLM

VOCAB = 128


def build_model():
    config = GPTNeoConfig(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4,
                          attention_types=[[["global", "local"], 1]], window_size=8, max_position_embeddings=64,
                          intermediate_size=64, bos_token_id=0, eos_token_id=0)
    return GPTNeoForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
