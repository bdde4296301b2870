"""An MNIST MLP course notebook validates each epoch with dropout still active: model.eval() is never called.

The network has Dropout(0.2) between its layers; the training loop runs a validation pass after every epoch
with the model still in training mode, so the validation loss is computed with units randomly dropped and
is noisy and pessimistic. The course author: "You're absolutely right ... This was an oversight of mine."

Source: https://github.com/udacity/deep-learning-v2-pytorch/issues/3
Finds: eval-mode-missing @ dropout
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x):
        x = x.view(-1, 28 * 28)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


def digits(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    train_loader = DataLoader(digits(320, 1), batch_size=20, shuffle=True)
    valid_loader = DataLoader(digits(100, 2), batch_size=20)
    model = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(2):
            train_loss = valid_loss = 0.0
            for data, target in probe.wrap(train_loader):
                optimizer.zero_grad()
                loss = criterion(model(data), target)
                loss.backward()
                optimizer.step()
                train_loss += loss.item() * data.size(0)
            for data, target in valid_loader:               # the bug: no model.eval() (nor no_grad)
                loss = criterion(model(data), target)
                valid_loss += loss.item() * data.size(0)
