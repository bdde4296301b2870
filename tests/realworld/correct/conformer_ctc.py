"""Conformer encoder for speech with CTC: macaron half-step feed-forwards around self-attention and a convolution
module (pointwise + GLU, depthwise, BatchNorm, SiLU), padded utterances masked in attention.

Source: pytorch/audio, src/torchaudio/models/conformer.py (_FeedForwardModule, _ConvolutionModule,
ConformerLayer, _lengths_to_padding_mask), after Gulati et al., "Conformer: Convolution-augmented Transformer
for Speech Recognition"; the input projection, the linear head and the CTC loss (torch.nn.functional.ctc_loss)
are our own small front and back ends.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

FEATS, DIM, HEADS, FFN, KERNEL, LAYERS, VOCAB = 20, 32, 4, 64, 7, 2, 16


def lengths_to_padding_mask(lengths, max_len):
    return torch.arange(max_len)[None, :] >= lengths[:, None]          # True where padded


class FeedForward(nn.Module):
    def __init__(self, dropout=0.1):
        super().__init__()
        self.seq = nn.Sequential(nn.LayerNorm(DIM), nn.Linear(DIM, FFN), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(FFN, DIM), nn.Dropout(dropout))

    def forward(self, x):
        return self.seq(x)


class ConvolutionModule(nn.Module):
    def __init__(self, dropout=0.1):
        super().__init__()
        self.layer_norm = nn.LayerNorm(DIM)
        self.pointwise1 = nn.Conv1d(DIM, 2 * DIM, 1)
        self.depthwise = nn.Conv1d(DIM, DIM, KERNEL, padding=(KERNEL - 1) // 2, groups=DIM)
        self.batch_norm = nn.BatchNorm1d(DIM)
        self.pointwise2 = nn.Conv1d(DIM, DIM, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):                                   # (B, T, D)
        x = self.layer_norm(x).transpose(1, 2)
        x = F.glu(self.pointwise1(x), dim=1)
        x = F.silu(self.batch_norm(self.depthwise(x)))
        return self.dropout(self.pointwise2(x)).transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, dropout=0.1):
        super().__init__()
        self.ffn1 = FeedForward(dropout)
        self.self_attn_layer_norm = nn.LayerNorm(DIM)
        self.self_attn = nn.MultiheadAttention(DIM, HEADS, dropout=dropout, batch_first=True)
        self.self_attn_dropout = nn.Dropout(dropout)
        self.conv_module = ConvolutionModule(dropout)
        self.ffn2 = FeedForward(dropout)
        self.final_layer_norm = nn.LayerNorm(DIM)

    def forward(self, x, padding_mask):
        x = x + 0.5 * self.ffn1(x)
        h = self.self_attn_layer_norm(x)
        h, _ = self.self_attn(h, h, h, key_padding_mask=padding_mask, need_weights=False)
        x = x + self.self_attn_dropout(h)
        x = x + self.conv_module(x)
        x = x + 0.5 * self.ffn2(x)
        return self.final_layer_norm(x)


class ConformerCTC(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_proj = nn.Linear(FEATS, DIM)
        self.layers = nn.ModuleList(ConformerLayer() for _ in range(LAYERS))
        self.head = nn.Linear(DIM, VOCAB)

    def forward(self, features, lengths):
        mask = lengths_to_padding_mask(lengths, features.size(1))
        x = self.input_proj(features)
        for layer in self.layers:
            x = layer(x, mask)
        return F.log_softmax(self.head(x), dim=-1), lengths


def build_model():
    return ConformerCTC()


def make_batch(batch_size):
    frames = 40
    lengths = torch.randint(28, frames + 1, (batch_size,))
    lengths[0] = frames
    feats = torch.randn(batch_size, frames, FEATS)
    feats = feats.masked_fill(lengths_to_padding_mask(lengths, frames)[..., None], 0.0)
    target_lengths = torch.randint(5, 11, (batch_size,))
    targets = torch.randint(1, VOCAB, (batch_size, 10))          # 0 is the CTC blank
    return (feats, lengths), (targets, target_lengths)


def loss_fn(outputs, targets):
    log_probs, input_lengths = outputs
    labels, target_lengths = targets
    return F.ctc_loss(log_probs.transpose(0, 1), labels, input_lengths, target_lengths, blank=0,
                      zero_infinity=True)


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=1e-3)
