"""Vision Transformer image classifier (patch embedding, [CLS] token, learned positions), tiny config on 32x32 images.

Source: Hugging Face transformers, ViTForImageClassification (models/vit/modeling_vit.py).
Finds: nothing
"""
import torch
from transformers import ViTConfig, ViTForImageClassification


def build_model():
    config = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=64, num_labels=10, hidden_dropout_prob=0.1)
    return ViTForImageClassification(config)


def make_batch(batch_size):
    labels = torch.randint(0, 10, (batch_size,))
    return {"pixel_values": torch.randn(batch_size, 3, 32, 32), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.05)
