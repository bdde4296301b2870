"""Swin Transformer classifier: shifted-window attention with relative position bias and patch merging, tiny config.

Source: Hugging Face transformers, SwinForImageClassification (models/swin/modeling_swin.py).
Finds: nothing
"""
import torch
from transformers import SwinConfig, SwinForImageClassification


def build_model():
    config = SwinConfig(image_size=32, patch_size=2, num_channels=3, embed_dim=16, depths=[2, 2],
                        num_heads=[2, 4], window_size=4, mlp_ratio=2.0, drop_path_rate=0.1, num_labels=10)
    return SwinForImageClassification(config)


def make_batch(batch_size):
    labels = torch.randint(0, 10, (batch_size,))
    return {"pixel_values": torch.randn(batch_size, 3, 32, 32), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    # the Swin recipe: AdamW, weight decay 0.05, none on norms, biases and the relative position tables
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim == 1 or "relative_position_bias_table" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                              {"params": no_decay, "weight_decay": 0.0}], lr=5e-4)
