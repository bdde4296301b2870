"""GPT-NeoX causal LM (parallel residual, rotary on a quarter of each head, untied output head), tiny config.

Source: Hugging Face transformers, GPTNeoXForCausalLM (models/gpt_neox/modeling_gpt_neox.py).
Finds: nothing
"""
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

VOCAB = 128


def build_model():
    config = GPTNeoXConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, rotary_pct=0.25, max_position_embeddings=128,
                           use_parallel_residual=True, tie_word_embeddings=False)
    return GPTNeoXForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
