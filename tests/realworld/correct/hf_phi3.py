"""Phi-3 causal LM: fused qkv and gate_up projections, RMSNorm, rotary attention, tiny config.

Source: Hugging Face transformers, Phi3ForCausalLM (models/phi3/modeling_phi3.py).
Finds: nothing
"""
import torch
from transformers import Phi3Config, Phi3ForCausalLM

VOCAB = 128


def build_model():
    config = Phi3Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                        original_max_position_embeddings=64, resid_pdrop=0.0, embd_pdrop=0.0,
                        attention_dropout=0.0, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return Phi3ForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(3, VOCAB, (batch_size, 24))
    ids[:, 0] = 1
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
