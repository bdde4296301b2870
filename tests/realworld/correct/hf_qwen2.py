"""Qwen2 causal LM (attention with q/k/v biases, rotary positions) from a tiny config.

Source: Hugging Face transformers, Qwen2ForCausalLM (models/qwen2/modeling_qwen2.py).
Finds: nothing
"""
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

VOCAB = 151


def build_model():
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         tie_word_embeddings=True)
    return Qwen2ForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 20))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    # no weight decay on biases and norm weights, as the HF Trainer does
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}], lr=3e-4)
