"""Mamba selective state-space language model (the pure-PyTorch scan path on CPU), tiny config.

Source: Hugging Face transformers, MambaForCausalLM (models/mamba/modeling_mamba.py).
Finds: nothing
"""
import torch
from transformers import MambaConfig, MambaForCausalLM

VOCAB = 128


def build_model():
    config = MambaConfig(vocab_size=VOCAB, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2,
                         conv_kernel=4, time_step_rank=4, use_mambapy=False)
    return MambaForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss


def make_optimizer(model):
    # A_log and D are kept out of weight decay, as the reference Mamba training does
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and not n.endswith("A_log")]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and not n.endswith("A_log"))]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                             lr=1e-3)
