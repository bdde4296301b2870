"""CLIP contrastive image-text pre-training (symmetric InfoNCE with a learned temperature), tiny towers.

Source: Hugging Face transformers, CLIPModel with return_loss=True (models/clip/modeling_clip.py).
Finds: nothing
"""
import torch
from transformers import CLIPConfig, CLIPModel

VOCAB = 128
EOS = 2


def build_model():
    text = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=16, bos_token_id=1, eos_token_id=EOS, pad_token_id=0)
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4)
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))


def make_batch(batch_size):
    ids = torch.randint(3, VOCAB, (batch_size, 16))
    ids[:, 0], ids[:, -1] = 1, EOS                 # the text embedding is read at the <eos> token
    pixels = torch.randn(batch_size, 3, 32, 32)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels,
            "return_loss": True}, torch.arange(batch_size)


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
