"""GPT-2 language model head (tied input/output embeddings), built from a tiny config, trained on its own shifted loss.

Source: Hugging Face transformers, GPT2LMHeadModel (models/gpt2/modeling_gpt2.py).
Finds: nothing
"""
import torch
from transformers import GPT2Config, GPT2LMHeadModel

VOCAB = 128


def build_model():
    config = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                        bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    # the model shifts the labels by one inside forward
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
