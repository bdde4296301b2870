"""MobileViT classifier: MobileNetV2 inverted residuals interleaved with unfold-attend-fold transformer blocks.

Source: Hugging Face transformers, MobileViTForImageClassification (models/mobilevit/modeling_mobilevit.py).
Finds: nothing
"""
import torch
from transformers import MobileViTConfig, MobileViTForImageClassification


def build_model():
    config = MobileViTConfig(num_channels=3, image_size=32, patch_size=2, hidden_sizes=[16, 24, 32],
                             neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 48], num_attention_heads=2, mlp_ratio=2.0,
                             expand_ratio=2.0, hidden_dropout_prob=0.1, classifier_dropout_prob=0.1,
                             num_labels=10)
    return MobileViTForImageClassification(config)


def make_batch(batch_size):
    labels = torch.randint(0, 10, (batch_size,))
    return {"pixel_values": torch.randn(batch_size, 3, 32, 32), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
