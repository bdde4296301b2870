"""Which model a file means: the outermost nn.Module class when the file has several (in process)."""
import textwrap

import pytest

from probes.errors import UserCodeError
from probes.modelfile import load_module, model_factory

ENCODER_AND_MODEL = '''
import torch
from torch import nn

class Encoder(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.fc = nn.Linear(d, 16)
    def forward(self, x):
        return torch.relu(self.fc(x))

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
    def forward(self, x):
        return x + self.fc(x)

class SmoothedLoss(nn.Module):        # a loss written as a module: nothing to train
    def forward(self, out, y):
        return nn.functional.cross_entropy(out, y, label_smoothing=0.1)

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = Encoder()
        self.blocks = nn.Sequential(*[Block() for _ in range(2)])
        self.head = nn.Linear(16, 3)
    def forward(self, x):
        return self.head(self.blocks(self.enc(x)))
'''


def factory(tmp_path, source, name=None):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(source))
    return model_factory(load_module(path), path, name)


def test_the_class_no_other_class_uses_is_the_model(tmp_path):
    label, build = factory(tmp_path, ENCODER_AND_MODEL)
    assert label == "Model" and type(build()).__name__ == "Model"


def test_two_independent_models_still_ask_which(tmp_path):
    source = ENCODER_AND_MODEL + '''
class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)
    def forward(self, x):
        return self.fc(x)
'''
    with pytest.raises(UserCodeError) as err:
        factory(tmp_path, source)
    text = str(err.value)
    assert "(Model, Other;" in text and "--model NAME" in text
    assert "Encoder, Block used by another class" in text and "SmoothedLoss without parameters" in text
    label, _ = factory(tmp_path, source, "Other")
    assert label == "Other"
