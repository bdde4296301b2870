"""Wav2Vec2 fine-tuned with CTC on raw audio, the convolutional feature encoder frozen as the HF recipe does.

Source: Hugging Face transformers, Wav2Vec2ForCTC (models/wav2vec2/modeling_wav2vec2.py), with
freeze_feature_encoder() as in examples/pytorch/speech-recognition/run_speech_recognition_ctc.py.
Finds: nothing
"""
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

VOCAB = 32


def build_model():
    config = Wav2Vec2Config(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, conv_dim=(16, 16, 16), conv_stride=(5, 2, 2),
                            conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                            mask_time_prob=0.05, mask_time_length=2, ctc_loss_reduction="mean",
                            pad_token_id=0, layerdrop=0.0)
    model = Wav2Vec2ForCTC(config)
    model.freeze_feature_encoder()
    return model


def make_batch(batch_size):
    audio = torch.randn(batch_size, 3200)          # 0.2 s at 16 kHz -> 159 frames
    labels = torch.randint(1, VOCAB, (batch_size, 12))
    labels[: batch_size // 2, 9:] = -100            # shorter transcripts padded with -100
    return {"input_values": audio, "labels": labels}, labels


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.005)
