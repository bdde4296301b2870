"""Character-level RNN name classifier: the network ends in LogSoftmax and trains with nn.NLLLoss.

Source: pytorch/tutorials, intermediate_source/char_rnn_classification_tutorial.py (names as one-hot letter
tensors, an RNN whose class scores go through nn.LogSoftmax(dim=1), criterion nn.NLLLoss(), SGD); here the
"languages" are synthetic letter distributions and the names come in small padded batches.
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe

LETTERS, LANGS, LENGTH = 26, 4, 7


class CharRNN(nn.Module):
    def __init__(self, hidden_size=64):
        super().__init__()
        self.rnn = nn.RNN(LETTERS, hidden_size, batch_first=True)
        self.h2o = nn.Linear(hidden_size, LANGS)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        _, hidden = self.rnn(line_tensor)
        return self.softmax(self.h2o(hidden[0]))


def names(n, letter_probs):
    lang = torch.randint(0, LANGS, (n,))
    letters = torch.multinomial(letter_probs[lang], LENGTH, replacement=True)
    return nn.functional.one_hot(letters, LETTERS).float(), lang


def train(run_dir):
    torch.manual_seed(0)
    letter_probs = torch.softmax(torch.randn(LANGS, LETTERS) * 2, dim=1)   # each language favours some letters
    model = CharRNN()
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(30):
            line_tensor, category = names(16, letter_probs)
            optimizer.zero_grad()
            output = model(line_tensor)
            loss = criterion(output, category)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 3)
            optimizer.step()
