"""Whisper speech-to-text (conv front end on log-mel features, sinusoidal encoder positions), tiny config.

Source: Hugging Face transformers, WhisperForConditionalGeneration (models/whisper/modeling_whisper.py).
Finds: nothing
"""
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

VOCAB = 128
MELS, FRAMES = 16, 64


def build_model():
    config = WhisperConfig(vocab_size=VOCAB, num_mel_bins=MELS, encoder_layers=1, decoder_layers=1, d_model=32,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_source_positions=FRAMES // 2, max_target_positions=32,
                           pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                           begin_suppress_tokens=None, suppress_tokens=None)
    return WhisperForConditionalGeneration(config)


def make_batch(batch_size):
    features = torch.randn(batch_size, MELS, FRAMES)
    labels = torch.randint(3, VOCAB, (batch_size, 12))
    labels[:, -1] = 2
    return {"input_features": features, "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
