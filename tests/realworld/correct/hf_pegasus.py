"""Pegasus abstractive summariser (pre-LN encoder-decoder, sinusoidal positions, scaled embeddings), tiny config.

Source: Hugging Face transformers, PegasusForConditionalGeneration (models/pegasus/modeling_pegasus.py).
Finds: nothing
"""
import torch
from transformers import PegasusConfig, PegasusForConditionalGeneration

VOCAB = 128
PAD, EOS = 0, 1          # Pegasus: pad doubles as the decoder start token


def build_model():
    config = PegasusConfig(vocab_size=VOCAB, d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS,
                           decoder_start_token_id=PAD, forced_eos_token_id=EOS, scale_embedding=True)
    return PegasusForConditionalGeneration(config)


def make_batch(batch_size):
    document = torch.randint(2, VOCAB, (batch_size, 24))
    document[:, -1] = EOS
    summary = torch.randint(2, VOCAB, (batch_size, 8))
    summary[:, -1] = EOS
    return {"input_ids": document, "attention_mask": torch.ones_like(document), "labels": summary}, summary


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
