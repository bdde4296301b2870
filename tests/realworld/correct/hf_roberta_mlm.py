"""RoBERTa masked-language-model pre-training: 15% of tokens chosen, 80/10/10 mask/random/keep, loss only on those.

Source: Hugging Face transformers, RobertaForMaskedLM (models/roberta/modeling_roberta.py) with the masking
of DataCollatorForLanguageModeling (data/data_collator.py).
Finds: nothing
"""
import torch
from transformers import RobertaConfig, RobertaForMaskedLM

VOCAB = 128
BOS, PAD, EOS, MASK = 0, 1, 2, 3


def build_model():
    config = RobertaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=40, type_vocab_size=1,
                           pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
    return RobertaForMaskedLM(config)


def make_batch(batch_size):
    ids = torch.randint(4, VOCAB, (batch_size, 32))
    ids[:, 0], ids[:, -1] = BOS, EOS
    labels = ids.clone()
    special = (ids == BOS) | (ids == EOS)
    chosen = torch.bernoulli(torch.full(ids.shape, 0.15)).bool() & ~special
    labels[~chosen] = -100
    masked = torch.bernoulli(torch.full(ids.shape, 0.8)).bool() & chosen
    ids = ids.masked_fill(masked, MASK)
    randomised = torch.bernoulli(torch.full(ids.shape, 0.5)).bool() & chosen & ~masked
    ids = torch.where(randomised, torch.randint(4, VOCAB, ids.shape), ids)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
