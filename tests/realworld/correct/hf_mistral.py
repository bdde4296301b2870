"""Mistral causal LM with sliding-window attention and grouped-query attention, tiny config, padded batch.

Source: Hugging Face transformers, MistralForCausalLM (models/mistral/modeling_mistral.py).
Finds: nothing
"""
import torch
from transformers import MistralConfig, MistralForCausalLM

VOCAB = 128
PAD = 0


def build_model():
    config = MistralConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=1, sliding_window=8,
                           max_position_embeddings=128, pad_token_id=PAD)
    return MistralForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(1, VOCAB, (batch_size, 24))
    mask = torch.ones_like(ids)
    lengths = torch.randint(16, 25, (batch_size,))
    for row, n in enumerate(lengths.tolist()):      # right padding, as a collator would do
        ids[row, n:] = PAD
        mask[row, n:] = 0
    labels = ids.masked_fill(mask == 0, -100)       # no loss on padding
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.01)
