"""A classifier's loss is computed on argmax class predictions instead of the logits.

The training loop takes `torch.softmax(logits, dim=1).argmax(dim=1)` (cast to float) and feeds those hard
predictions to the loss together with the labels. argmax has no gradient, so the loss is a constant as
far as autograd is concerned and loss.backward() fails with "element 0 of tensors does not require grad
and does not have a grad_fn".

Source: https://php.bkmy88.com/faq/1835025.html
Finds: gradient-chain-broken @ (the model)
"""
import torch
from torch import nn

FEATURES, CLASSES = 2, 4


class BlobModel(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                    nn.ReLU(), nn.Linear(hidden, CLASSES))

    def forward(self, x):
        return self.layers(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, FEATURES), torch.randint(0, CLASSES, (batch_size,))


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    train_logits = model(x)
    train_preds = torch.softmax(train_logits, dim=1).argmax(dim=1).type(torch.float32)   # the bug
    loss = nn.functional.l1_loss(train_preds, y.type(torch.float32))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
