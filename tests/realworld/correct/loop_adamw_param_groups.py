"""AdamW with two parameter groups: weight decay on weight matrices, none on biases, LayerNorm and embeddings.

Source: Hugging Face transformers, Trainer.create_optimizer / get_decay_parameter_names (trainer.py), which
leave biases and LayerNorm weights out of decay; the same split as karpathy/nanoGPT configure_optimizers.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

VOCAB, CLASSES = 150, 3


class TinyEncoder(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.layer = nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.1, batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, CLASSES)

    def forward(self, tokens):
        return self.classifier(self.norm(self.layer(self.embed(tokens))).mean(1))


def param_groups(model, weight_decay):
    no_decay_types = (nn.LayerNorm, nn.Embedding)
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, no_decay_types) or name.endswith("bias"):
                no_decay.append(p)
            else:
                decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(run_dir):
    torch.manual_seed(0)
    model = TinyEncoder()
    optimizer = torch.optim.AdamW(param_groups(model, 0.05), lr=5e-4, betas=(0.9, 0.999))
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            tokens = torch.randint(0, VOCAB, (16, 20))
            labels = tokens[:, 0] % CLASSES                 # learnable: the class is in the first token
            loss = F.cross_entropy(model(tokens), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
