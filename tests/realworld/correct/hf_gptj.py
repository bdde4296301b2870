"""GPT-J causal LM: parallel attention + MLP residual branch off one LayerNorm, partial rotary embeddings.

Source: Hugging Face transformers, GPTJForCausalLM (models/gptj/modeling_gptj.py).
Finds: nothing
"""
import torch
from transformers import GPTJConfig, GPTJForCausalLM

VOCAB = 128


def build_model():
    config = GPTJConfig(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, rotary_dim=4,
                        n_inner=64, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False)
    return GPTJForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
