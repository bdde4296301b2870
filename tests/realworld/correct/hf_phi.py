"""Phi causal LM (parallel attention + MLP block, partial rotary embedding, dense lm_head with bias), tiny config.

Source: Hugging Face transformers, PhiForCausalLM (models/phi/modeling_phi.py).
Finds: nothing
"""
import torch
from transformers import PhiConfig, PhiForCausalLM

VOCAB = 128


def build_model():
    config = PhiConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, partial_rotary_factor=0.5, max_position_embeddings=128,
                       resid_pdrop=0.1, embd_pdrop=0.0)
    return PhiForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.1, betas=(0.9, 0.95))
