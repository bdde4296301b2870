"""ResNet classifier with basic blocks, BatchNorm and a 7x7 stem, tiny config, SGD with momentum.

Source: Hugging Face transformers, ResNetForImageClassification (models/resnet/modeling_resnet.py).
Finds: nothing
"""
import torch
from transformers import ResNetConfig, ResNetForImageClassification


def build_model():
    config = ResNetConfig(num_channels=3, embedding_size=16, hidden_sizes=[16, 32, 64], depths=[1, 1, 1],
                          layer_type="basic", hidden_act="relu", downsample_in_first_stage=False, num_labels=10)
    return ResNetForImageClassification(config)


def make_batch(batch_size):
    labels = torch.randint(0, 10, (batch_size,))
    return {"pixel_values": torch.randn(batch_size, 3, 64, 64), "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
