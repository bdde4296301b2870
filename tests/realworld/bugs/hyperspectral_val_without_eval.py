"""A hyperspectral classification toolbox's val() runs under torch.no_grad() but never calls net.eval().

The models have BatchNorm and Dropout; val() iterates the validation loader inside `with torch.no_grad():`
and counts correct predictions, with the network still in training mode (the reporter: "Since some model
have BN, dropout layers, why dont use model.eval() in the val function?").

Source: https://github.com/nshaud/DeepHyperX/issues/51
Finds: eval-mode-missing @ bn1
"""
import torch
from torch import nn
from torch.nn import functional as F

BANDS, CLASSES = 103, 9


class SpectralCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 20, 11)
        self.bn1 = nn.BatchNorm1d(20)
        self.pool = nn.MaxPool1d(3)
        self.fc1 = nn.Linear(20 * ((BANDS - 10) // 3), 100)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(100, CLASSES)

    def forward(self, x):                                       # x: (batch, bands) spectra
        x = self.pool(torch.tanh(self.bn1(self.conv1(x.unsqueeze(1)))))
        return self.fc2(self.dropout(torch.tanh(self.fc1(x.flatten(1)))))


def make_batch(batch_size: int):
    return torch.rand(batch_size, BANDS), torch.randint(0, CLASSES, (batch_size,))


def eval_step(model, batch):
    spectra, labels = batch
    with torch.no_grad():                                       # the bug: no model.eval() before validating
        predicted = model(spectra).argmax(dim=1)
    hits = sum(int(p == t) for p, t in zip(predicted.tolist(), labels.tolist()))
    return hits / len(labels)
