"""DeBERTa-v2 classifier with disentangled (content-to-position and position-to-content) relative attention.

Source: Hugging Face transformers, DebertaV2ForSequenceClassification (models/deberta_v2/modeling_deberta_v2.py).
Finds: nothing
"""
import torch
from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

VOCAB = 128


def build_model():
    config = DebertaV2Config(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=64, relative_attention=True,
                             position_buckets=16, max_relative_positions=-1, pos_att_type=["p2c", "c2p"],
                             norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False,
                             type_vocab_size=0, num_labels=3)
    return DebertaV2ForSequenceClassification(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    labels = torch.randint(0, 3, (batch_size,))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6)
