"""Llama causal LM trained with gradient checkpointing (activations recomputed in backward, cache off).

Source: Hugging Face transformers, PreTrainedModel.activation_checkpointing_enable (modeling_utils.py; the
former gradient_checkpointing_enable) on LlamaForCausalLM (models/llama/modeling_llama.py), as the Trainer's
gradient_checkpointing=True does.
Finds: nothing
"""
import torch
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB = 128


def build_model():
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64, use_cache=False)
    model = LlamaForCausalLM(config)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
