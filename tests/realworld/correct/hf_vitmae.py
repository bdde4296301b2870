"""ViT-MAE pre-training: 75% of patches randomly masked, a light decoder reconstructs normalised pixels.

Source: Hugging Face transformers, ViTMAEForPreTraining (models/vit_mae/modeling_vit_mae.py), as in
examples/pytorch/image-pretraining/run_mae.py (mask_ratio=0.75, norm_pix_loss).
Finds: nothing
"""
import torch
from transformers import ViTMAEConfig, ViTMAEForPreTraining


def build_model():
    config = ViTMAEConfig(image_size=32, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=64, decoder_hidden_size=16,
                          decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=32,
                          mask_ratio=0.75, norm_pix_loss=True)
    return ViTMAEForPreTraining(config)


def make_batch(batch_size):
    images = torch.randn(batch_size, 3, 32, 32)
    return {"pixel_values": images}, images


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    # run_mae.py: base lr 1.5e-4 scaled by batch/256, AdamW betas (0.9, 0.95), weight decay 0.05
    return torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05)
