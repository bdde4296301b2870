"""BEiT image classifier: relative position bias per layer, layer scale (init 0.1) and mean-pooled patch tokens.

Source: Hugging Face transformers, BeitForImageClassification (models/beit/modeling_beit.py).
Finds: nothing
"""
import torch
from transformers import BeitConfig, BeitForImageClassification


def build_model():
    config = BeitConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, use_relative_position_bias=True,
                        use_mean_pooling=True, layer_scale_init_value=0.1, drop_path_rate=0.1, num_labels=10)
    return BeitForImageClassification(config)


def make_batch(batch_size):
    labels = torch.randint(0, 10, (batch_size,))
    return {"pixel_values": torch.randn(batch_size, 3, 32, 32), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.05)
