"""Knowledge distillation: a frozen teacher in eval mode under no_grad, the student trained on soft targets
(T = 2, scaled by T^2) plus hard-label cross-entropy.

Source: pytorch/tutorials, beginner_source/knowledge_distillation_tutorial.py (train_knowledge_distillation:
T=2, soft_target_loss_weight=0.25, ce_loss_weight=0.75), after Hinton et al., "Distilling the Knowledge in a
Neural Network".
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

T, SOFT_W, CE_W = 2.0, 0.25, 0.75


def conv_net(width, dropout):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(width * 8, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, 10))


def train(run_dir):
    torch.manual_seed(0)
    teacher, student = conv_net(32, 0.1), conv_net(8, 0.1)
    teacher.eval()
    teacher.requires_grad_(False)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    student.train()
    with Probe(student, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
            with torch.no_grad():
                teacher_logits = teacher(x)
            student_logits = student(x)
            soft_targets = F.softmax(teacher_logits / T, dim=-1)
            soft_prob = F.log_softmax(student_logits / T, dim=-1)
            soft_loss = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size(0) * T ** 2
            loss = SOFT_W * soft_loss + CE_W * F.cross_entropy(student_logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
