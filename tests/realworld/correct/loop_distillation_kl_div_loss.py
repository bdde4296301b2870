"""Distillation with nn.KLDivLoss(reduction="batchmean"): student log_softmax(s / T) against teacher softmax(t / T), times T^2.

Source: Hugging Face transformers, examples/research_projects/distillation/distiller.py (DistilBERT's
Distiller: ce_loss_fct = nn.KLDivLoss(reduction="batchmean") on F.log_softmax(s_logits / T) and
F.softmax(t_logits / T), scaled by T**2, plus the hard-label loss, with the teacher frozen in eval mode).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

VOCAB, CLASSES, T, ALPHA_CE, ALPHA_HARD = 200, 4, 2.0, 5.0, 2.0


def encoder(dim, layers):
    blocks = [nn.Embedding(VOCAB, dim), nn.Flatten(1)]
    width = dim * 8
    for _ in range(layers):
        blocks += [nn.Linear(width, dim), nn.GELU(), nn.Dropout(0.1)]
        width = dim
    return nn.Sequential(*blocks, nn.Linear(width, CLASSES))


def train(run_dir):
    torch.manual_seed(0)
    teacher, student = encoder(64, 3), encoder(16, 1)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad = False
    ce_loss_fct = nn.KLDivLoss(reduction="batchmean")
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3)
    student.train()
    with Probe(student, optimizer, run_dir=run_dir):
        for step in range(30):
            ids = torch.randint(0, VOCAB, (16, 8))
            labels = ids[:, 0] % CLASSES
            with torch.no_grad():
                t_logits = teacher(ids)
            s_logits = student(ids)
            loss_ce = ce_loss_fct(F.log_softmax(s_logits / T, dim=-1), F.softmax(t_logits / T, dim=-1)) * T ** 2
            loss = ALPHA_CE * loss_ce + ALPHA_HARD * F.cross_entropy(s_logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
