"""MarianMT translation model with a padded source batch and -100-padded target labels, tiny config.

Source: Hugging Face transformers, MarianMTModel (models/marian/modeling_marian.py), labels padded with -100
as DataCollatorForSeq2Seq does in examples/pytorch/translation/run_translation.py.
Finds: nothing
"""
import torch
from transformers import MarianConfig, MarianMTModel

VOCAB = 128
PAD, EOS = 127, 0        # Marian keeps the pad id last; the decoder starts from pad


def build_model():
    config = MarianConfig(vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=32, encoder_layers=1,
                          decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
                          encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                          pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD,
                          share_encoder_decoder_embeddings=True)
    return MarianMTModel(config)


def make_batch(batch_size):
    src = torch.randint(1, VOCAB - 1, (batch_size, 20))
    mask = torch.ones_like(src)
    lengths = torch.randint(12, 21, (batch_size,))
    for i, n in enumerate(lengths.tolist()):
        src[i, n - 1] = EOS
        src[i, n:] = PAD
        mask[i, n:] = 0
    labels = torch.randint(1, VOCAB - 1, (batch_size, 14))
    labels[:, 9] = EOS
    labels[: batch_size // 2, 10:] = -100               # shorter targets: ignored positions
    labels[batch_size // 2:, -1] = EOS
    return {"input_ids": src, "attention_mask": mask, "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.0)
