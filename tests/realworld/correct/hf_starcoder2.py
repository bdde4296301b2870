"""Starcoder2 code LM: sliding-window grouped-query attention, biased projections, GELU MLP, tiny config.

Source: Hugging Face transformers, Starcoder2ForCausalLM (models/starcoder2/modeling_starcoder2.py).
Finds: nothing
"""
import torch
from transformers import Starcoder2Config, Starcoder2ForCausalLM

VOCAB = 128


def build_model():
    config = Starcoder2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                              sliding_window=8, use_bias=True, residual_dropout=0.0, embedding_dropout=0.0,
                              attention_dropout=0.0)
    return Starcoder2ForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
