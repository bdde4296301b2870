"""LoRA adapters on the Linear layers of a frozen MLP: W x + (alpha/r) B A x, A Kaiming-uniform, B zero at start.

Source: microsoft/LoRA, loralib/layers.py (Linear with r, lora_alpha, lora_dropout; reset_parameters) and
loralib/utils.py (mark_only_lora_as_trainable).
Finds: nothing
"""
import math

import torch
from torch import nn
from torch.nn import functional as F


class LoRALinear(nn.Linear):
    def __init__(self, in_features, out_features, r=4, lora_alpha=8, lora_dropout=0.05):
        super().__init__(in_features, out_features)
        self.lora_A = nn.Parameter(self.weight.new_zeros((r, in_features)))
        self.lora_B = nn.Parameter(self.weight.new_zeros((out_features, r)))
        self.scaling = lora_alpha / r
        self.lora_dropout = nn.Dropout(lora_dropout)
        self.weight.requires_grad = False          # the pretrained weight stays frozen
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)                # the adapter starts as an exact no-op

    def forward(self, x):
        base = F.linear(x, self.weight, self.bias)
        return base + (self.lora_dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


class AdaptedMLP(nn.Module):
    def __init__(self, features=32, hidden=64, classes=5):
        super().__init__()
        self.fc1 = LoRALinear(features, hidden)
        self.fc2 = LoRALinear(hidden, hidden)
        self.head = nn.Linear(hidden, classes)     # a new task head, trained in full

    def forward(self, x):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


def mark_only_lora_as_trainable(model, keep=("head",)):
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name or name.startswith(keep)


def build_model():
    model = AdaptedMLP()
    mark_only_lora_as_trainable(model)
    return model


def make_batch(batch_size):
    return torch.randn(batch_size, 32), torch.randint(0, 5, (batch_size,))


def make_optimizer(model):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, weight_decay=0.01)
