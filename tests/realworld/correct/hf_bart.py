"""BART encoder-decoder trained as a seq2seq model: labels shifted right into decoder inputs by the model itself.

Source: Hugging Face transformers, BartForConditionalGeneration (models/bart/modeling_bart.py).
Finds: nothing
"""
import torch
from transformers import BartConfig, BartForConditionalGeneration

VOCAB = 128
PAD, BOS, EOS = 1, 0, 2


def build_model():
    config = BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=PAD, bos_token_id=BOS,
                        eos_token_id=EOS, decoder_start_token_id=EOS, forced_eos_token_id=EOS)
    return BartForConditionalGeneration(config)


def make_batch(batch_size):
    src = torch.randint(3, VOCAB, (batch_size, 20))
    src[:, 0], src[:, -1] = BOS, EOS
    labels = torch.randint(3, VOCAB, (batch_size, 12))
    labels[:, -1] = EOS
    return {"input_ids": src, "attention_mask": torch.ones_like(src), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
