"""Mixtral sparse mixture-of-experts causal LM (top-2 router over 4 experts, router auxiliary loss), tiny config.

Source: Hugging Face transformers, MixtralForCausalLM (models/mixtral/modeling_mixtral.py).
Finds: nothing
"""
import torch
from transformers import MixtralConfig, MixtralForCausalLM

VOCAB = 128


def build_model():
    config = MixtralConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                           num_experts_per_tok=2, output_router_logits=True, router_aux_loss_coef=0.01,
                           max_position_embeddings=128)
    return MixtralForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss        # LM loss plus the load-balancing loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
