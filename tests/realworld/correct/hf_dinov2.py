"""DINOv2 image classifier: ViT with LayerScale, interpolated position embeddings, CLS + mean-patch head.

Source: Hugging Face transformers, Dinov2ForImageClassification (models/dinov2/modeling_dinov2.py).
Finds: nothing
"""
import torch
from transformers import Dinov2Config, Dinov2ForImageClassification


def build_model():
    config = Dinov2Config(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, mlp_ratio=2, layerscale_value=1.0, drop_path_rate=0.0,
                          num_labels=10)
    return Dinov2ForImageClassification(config)


def make_batch(batch_size):
    labels = torch.randint(0, 10, (batch_size,))
    return {"pixel_values": torch.randn(batch_size, 3, 32, 32), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
