"""HuBERT utterance classifier on raw audio: conv feature encoder frozen, mean-pooled projector, tiny config.

Source: Hugging Face transformers, HubertForSequenceClassification (models/hubert/modeling_hubert.py), with
freeze_feature_encoder() as in examples/pytorch/audio-classification/run_audio_classification.py.
Finds: nothing
"""
import torch
from transformers import HubertConfig, HubertForSequenceClassification


def build_model():
    config = HubertConfig(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, conv_dim=(16, 16, 16), conv_stride=(5, 2, 2),
                          conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                          classifier_proj_size=16, num_labels=4, mask_time_prob=0.0, layerdrop=0.0)
    model = HubertForSequenceClassification(config)
    model.freeze_feature_encoder()
    return model


def make_batch(batch_size):
    audio = torch.randn(batch_size, 3200)
    labels = torch.randint(0, 4, (batch_size,))
    return {"input_values": audio, "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5, weight_decay=0.0)
