"""OPT causal LM (learned positions with offset 2, pre-LayerNorm decoder), tiny config.

Source: Hugging Face transformers, OPTForCausalLM (models/opt/modeling_opt.py).
Finds: nothing
"""
import torch
from transformers import OPTConfig, OPTForCausalLM

VOCAB = 128


def build_model():
    config = OPTConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=4,
                       max_position_embeddings=64, word_embed_proj_dim=32, pad_token_id=1, bos_token_id=2,
                       eos_token_id=2, dropout=0.1)
    return OPTForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(3, VOCAB, (batch_size, 20))
    ids[:, 0] = 2
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95))
