"""A text CNN keeps its three n-gram convolutions in a plain Python list.

`self.conv1d = [nn.Conv1d(E, 1, 3), nn.Conv1d(E, 1, 4), nn.Conv1d(E, 1, 5)]` is invisible to nn.Module:
after net.cuda() the reporter found the convolutions still on the CPU, and model.parameters() (so the
optimizer) never lists their weights.

Source: https://github.com/pytorch/pytorch/issues/1053
Finds: unregistered-module @ (the model)
"""
import torch
from torch import nn

WORD_VEC_SIZE, SEQ, CLASSES = 50, 24, 2


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1d = [nn.Conv1d(WORD_VEC_SIZE, 1, 3),            # the bug: a plain list of layers
                       nn.Conv1d(WORD_VEC_SIZE, 1, 4),
                       nn.Conv1d(WORD_VEC_SIZE, 1, 5)]
        self.fc = nn.Linear(3, CLASSES)

    def forward(self, x):                                           # x: (batch, word vectors, words)
        pooled = [torch.relu(conv(x)).max(dim=2).values for conv in self.conv1d]
        return self.fc(torch.cat(pooled, dim=1))


def make_batch(batch_size: int):
    return torch.randn(batch_size, WORD_VEC_SIZE, SEQ), torch.randint(0, CLASSES, (batch_size,))
