"""T5 encoder-decoder (relative position buckets, RMS LayerNorm, no biases) fine-tuned with Adafactor at a fixed lr.

Source: Hugging Face transformers, T5ForConditionalGeneration (models/t5/modeling_t5.py) and the
Adafactor settings its docs recommend for fine-tuning (transformers/optimization.py).
Finds: nothing
"""
import torch
from transformers import T5Config, T5ForConditionalGeneration
from transformers.optimization import Adafactor

VOCAB = 128
PAD, EOS = 0, 1


def build_model():
    config = T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=32,
                      dropout_rate=0.1, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD)
    return T5ForConditionalGeneration(config)


def make_batch(batch_size):
    src = torch.randint(2, VOCAB, (batch_size, 20))
    src[:, -1] = EOS
    labels = torch.randint(2, VOCAB, (batch_size, 10))
    labels[:, -1] = EOS
    return {"input_ids": src, "attention_mask": torch.ones_like(src), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return Adafactor(model.parameters(), lr=1e-3, scale_parameter=False, relative_step=False,
                     warmup_init=False)
