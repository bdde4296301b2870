"""An active-learning solver tests its VGG-16-BN task model without switching it to eval mode.

The solver's test() runs the task model under torch.no_grad() to compute accuracy, but never calls
task_model.eval(): the BatchNorm layers normalise with each test batch's statistics (and overwrite their
running statistics with test data) and Dropout still drops units. The author agreed and added the line.

Source: https://github.com/sinhasam/vaal/issues/2
Finds: eval-mode-missing @ features.1
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class VGGBN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(32 * 8 * 8, 128), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def cifar_like(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g))


def test(task_model, test_loader) -> float:
    total, correct = 0, 0
    for imgs, labels in test_loader:                            # the bug: task_model.eval() is missing
        with torch.no_grad():
            preds = task_model(imgs).argmax(dim=1)
        correct += int((preds == labels).sum())
        total += labels.size(0)
    return correct / total


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    train_loader = DataLoader(cifar_like(256, 1), batch_size=16, shuffle=True)
    test_loader = DataLoader(cifar_like(64, 2), batch_size=16)
    task_model = VGGBN()
    optimizer = torch.optim.SGD(task_model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    with Probe(task_model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(2):
            task_model.train()
            for imgs, labels in probe.wrap(train_loader):
                loss = F.cross_entropy(task_model(imgs), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            test(task_model, test_loader)
