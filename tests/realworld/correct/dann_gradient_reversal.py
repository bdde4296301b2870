"""Domain-adversarial network (DANN): a gradient reversal layer (custom autograd.Function) before the domain head.

Source: fungtion/DANN, models/functions.py (ReverseLayerF) and models/model.py (CNNModel: feature extractor,
class classifier, domain classifier), after Ganin & Lempitsky, "Unsupervised Domain Adaptation by
Backpropagation".
Finds: nothing
"""
import torch
from torch import nn
from torch.autograd import Function
from torch.nn import functional as F


class ReverseLayerF(Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.neg() * ctx.alpha, None


class CNNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.feature = nn.Sequential(nn.Conv2d(3, 64, 5), nn.BatchNorm2d(64), nn.MaxPool2d(2), nn.ReLU(True),
                                     nn.Conv2d(64, 50, 5), nn.BatchNorm2d(50), nn.Dropout2d(), nn.MaxPool2d(2),
                                     nn.ReLU(True))
        self.class_classifier = nn.Sequential(nn.Linear(50 * 4 * 4, 100), nn.BatchNorm1d(100), nn.ReLU(True),
                                              nn.Dropout(), nn.Linear(100, 100), nn.BatchNorm1d(100), nn.ReLU(True),
                                              nn.Linear(100, 10))
        self.domain_classifier = nn.Sequential(nn.Linear(50 * 4 * 4, 100), nn.BatchNorm1d(100), nn.ReLU(True),
                                               nn.Linear(100, 2))

    def forward(self, x, alpha):
        feature = self.feature(x.expand(x.size(0), 3, 28, 28)).flatten(1)
        reverse = ReverseLayerF.apply(feature, alpha)
        return self.class_classifier(feature), self.domain_classifier(reverse)


def make_batch(batch_size):
    # half source (labelled, domain 0), half target (domain 1; its class labels unused)
    x = torch.randn(batch_size, 3, 28, 28)
    x[batch_size // 2:] = x[batch_size // 2:] * 0.5 + 0.3
    labels = torch.randint(0, 10, (batch_size,))
    domain = (torch.arange(batch_size) >= batch_size // 2).long()
    return (x, 0.1), (labels, domain)


def loss_fn(outputs, targets):
    class_out, domain_out = outputs
    labels, domain = targets
    source = domain == 0
    return F.cross_entropy(class_out[source], labels[source]) + F.cross_entropy(domain_out, domain)


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
