"""A genomics model's trunk class never calls super().__init__(), so the whole model cannot be built.

ExplaiNNTrunk (independent convolutional units over one-hot DNA) sets `self.channels` and then
`self.blocks = nn.ModuleList()` without having called nn.Module.__init__: PyTorch raises "cannot assign
module before Module.__init__() call" from inside the trunk while the model that owns it is being built.

Source: https://github.com/Genentech/gReLU/issues/188
Finds: missing-super-init @ trunk
"""
import torch
from torch import nn

SEQ_LEN, UNITS, CLASSES = 200, 8, 3


class ExplaiNNTrunk(nn.Module):
    def __init__(self, in_len: int, channels: int, kernel_size: int):
        self.channels = channels                        # the bug: super().__init__() is never called
        self.blocks = nn.ModuleList()
        for _ in range(channels):
            self.blocks.append(nn.Sequential(
                nn.Conv1d(4, 1, kernel_size), nn.BatchNorm1d(1), nn.ReLU(),
                nn.MaxPool1d(7, 7), nn.Flatten(),
                nn.Linear((in_len - kernel_size + 1) // 7, 20), nn.ReLU(), nn.Linear(20, 1)))

    def forward(self, x):
        return torch.cat([block(x) for block in self.blocks], dim=1)


class ExplaiNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = ExplaiNNTrunk(in_len=SEQ_LEN, channels=UNITS, kernel_size=19)
        self.head = nn.Linear(UNITS, CLASSES)

    def forward(self, x):
        return self.head(self.trunk(x))


def build_model() -> ExplaiNN:
    return ExplaiNN()


def make_batch(batch_size: int):
    bases = torch.randint(0, 4, (batch_size, SEQ_LEN))
    one_hot = torch.nn.functional.one_hot(bases, 4).transpose(1, 2).float()
    return one_hot, torch.randint(0, CLASSES, (batch_size,))
