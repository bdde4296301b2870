"""XLNet sequence classifier (two-stream relative attention encoder, summary from the last token), tiny config.

Source: Hugging Face transformers, XLNetForSequenceClassification (models/xlnet/modeling_xlnet.py).
Finds: nothing
"""
import torch
from transformers import XLNetConfig, XLNetForSequenceClassification

VOCAB = 128


def build_model():
    config = XLNetConfig(vocab_size=VOCAB, d_model=32, n_layer=2, n_head=4, d_inner=64, num_labels=2,
                         summary_type="last", summary_use_proj=True)
    return XLNetForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(5, VOCAB, (batch_size, 20))
    labels = torch.randint(0, 2, (batch_size,))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01, eps=1e-6)
