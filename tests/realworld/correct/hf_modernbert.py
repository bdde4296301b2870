"""ModernBERT masked LM: alternating global/local attention, GeGLU MLP, rotary, no biases, 30% MLM masking.

Source: Hugging Face transformers, ModernBertForMaskedLM (models/modernbert/modeling_modernbert.py), masking as
DataCollatorForLanguageModeling (mlm_probability=0.3) does.
Finds: nothing
"""
import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

VOCAB = 128
PAD, MASK = 0, 4


def build_model():
    config = ModernBertConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=4, max_position_embeddings=64, global_attn_every_n_layers=3,
                              local_attention=8, pad_token_id=PAD, mask_token_id=MASK, bos_token_id=1,
                              eos_token_id=2, cls_token_id=1, sep_token_id=2, attn_implementation="sdpa")
    return ModernBertForMaskedLM(config)


def make_batch(batch_size):
    ids = torch.randint(5, VOCAB, (batch_size, 24))
    labels = ids.clone()
    chosen = torch.rand(ids.shape) < 0.3
    labels[~chosen] = -100
    replace = chosen & (torch.rand(ids.shape) < 0.8)
    ids = ids.masked_fill(replace, MASK)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=1e-5)
