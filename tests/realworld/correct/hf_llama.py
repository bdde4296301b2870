"""Llama causal LM (RMSNorm, rotary positions, SwiGLU, grouped-query attention) from a tiny config.

Source: Hugging Face transformers, LlamaForCausalLM (models/llama/modeling_llama.py).
Finds: nothing
"""
import torch
from torch.nn import functional as F
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB = 160


def build_model():
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=86, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rms_norm_eps=1e-6, tie_word_embeddings=False)
    return LlamaForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 32))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, ids


def loss_fn(outputs, targets):
    # next-token prediction: logits at position t predict token t+1
    logits = outputs.logits[:, :-1].reshape(-1, outputs.logits.size(-1))
    return F.cross_entropy(logits, targets[:, 1:].reshape(-1))


def make_optimizer(model):
    # the Llama recipe: AdamW, betas (0.9, 0.95), weight decay 0.1
    return torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
