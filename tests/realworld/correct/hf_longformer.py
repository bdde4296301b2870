"""Longformer classifier: sliding-window local attention plus global attention on the <s> token, tiny config.

Source: Hugging Face transformers, LongformerForSequenceClassification (models/longformer/modeling_longformer.py).
Finds: nothing
"""
import torch
from transformers import LongformerConfig, LongformerForSequenceClassification

VOCAB = 128
BOS, PAD, EOS = 0, 1, 2


def build_model():
    config = LongformerConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, attention_window=[8, 8], max_position_embeddings=72,
                              pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, num_labels=3)
    return LongformerForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(3, VOCAB, (batch_size, 32))
    ids[:, 0], ids[:, -1] = BOS, EOS
    global_mask = torch.zeros_like(ids)
    global_mask[:, 0] = 1                          # the classification token attends everywhere
    labels = torch.randint(0, 3, (batch_size,))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "global_attention_mask": global_mask,
            "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.01)
