"""ConvNeXt classifier: depthwise 7x7 conv blocks with LayerNorm, inverted bottleneck and layer scale init 1e-6.

Source: Hugging Face transformers, ConvNextForImageClassification (models/convnext/modeling_convnext.py).
Finds: nothing
"""
import torch
from transformers import ConvNextConfig, ConvNextForImageClassification


def build_model():
    config = ConvNextConfig(num_channels=3, patch_size=4, hidden_sizes=[16, 32], depths=[2, 2],
                            num_stages=2, layer_scale_init_value=1e-6, drop_path_rate=0.0, num_labels=10)
    return ConvNextForImageClassification(config)


def make_batch(batch_size):
    labels = torch.randint(0, 10, (batch_size,))
    return {"pixel_values": torch.randn(batch_size, 3, 32, 32), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.05)
