"""A library MergeLayer keeps the layers it merges in a Python list, so a model using it loses their weights.

MergeLayer runs several parallel layers on one input and concatenates their outputs; it stores them in
`self._layers = []`. A model built with it trains only its own layers: the merged branches are not in
parameters() (the reporter: "we may want to use a nn.ModuleList instead of python list").

Source: https://github.com/asyml/texar-pytorch/issues/72
Finds: unregistered-module @ merge
"""
import torch
from torch import nn

FEATURES, CLASSES = 32, 5


class MergeLayer(nn.Module):
    def __init__(self, layers=None, mode: str = "concat", dim: int = -1):
        super().__init__()
        self._mode, self._dim = mode, dim
        self._layers = None
        if layers is not None:
            self._layers = []                                    # the bug: a plain list, not nn.ModuleList
            for layer in layers:
                self._layers.append(layer)

    def forward(self, x):
        outputs = [layer(x) for layer in self._layers] if self._layers is not None else [x]
        if self._mode == "concat":
            return torch.cat(outputs, dim=self._dim)
        return torch.stack(outputs, dim=0).sum(dim=0)


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.merge = MergeLayer([nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU()),
                                 nn.Sequential(nn.Linear(FEATURES, 16), nn.Tanh())])
        self.out = nn.Linear(32, CLASSES)

    def forward(self, x):
        return self.out(self.merge(x))


def build_model() -> Tagger:
    return Tagger()


def make_batch(batch_size: int):
    return torch.randn(batch_size, FEATURES), torch.randint(0, CLASSES, (batch_size,))
