"""StableLM causal LM: LayerNorm blocks, grouped-query attention, rotary on a quarter of each head, tiny config.

Source: Hugging Face transformers, StableLmForCausalLM (models/stablelm/modeling_stablelm.py).
Finds: nothing
"""
import torch
from transformers import StableLmConfig, StableLmForCausalLM

VOCAB = 128


def build_model():
    config = StableLmConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                            partial_rotary_factor=0.25, use_qkv_bias=True, qk_layernorm=False,
                            hidden_dropout=0.0, attention_dropout=0.0)
    return StableLmForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    mask = torch.ones_like(ids)
    mask[: batch_size // 4, :4] = 0                   # a few left-padded rows
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
