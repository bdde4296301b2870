"""SegFormer semantic segmentation: hierarchical Mix Transformer encoder and all-MLP decode head, tiny config.

Source: Hugging Face transformers, SegformerForSemanticSegmentation (models/segformer/modeling_segformer.py).
Finds: nothing
"""
import torch
from transformers import SegformerConfig, SegformerForSemanticSegmentation

CLASSES = 5


def build_model():
    config = SegformerConfig(num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1],
                             hidden_sizes=[16, 32], patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2],
                             mlp_ratios=[2, 2], decoder_hidden_size=32, num_labels=CLASSES,
                             semantic_loss_ignore_index=255)
    return SegformerForSemanticSegmentation(config)


def make_batch(batch_size):
    masks = torch.randint(0, CLASSES, (batch_size, 32, 32))
    masks[:, :2] = 255                              # an ignored border, as in ADE20k's "other"
    return {"pixel_values": torch.randn(batch_size, 3, 32, 32), "labels": masks}, masks


def loss_fn(outputs, targets):
    return outputs.loss        # logits upsampled to the mask size inside the model


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=6e-5, weight_decay=0.01)
