"""A char-RNN name classifier is instantiated twice; the optimizer holds the first instance's parameters.

The tutorial builds `rnn = RNN(n_letters, n_hidden, n_categories)` right after the class (to try it on one
name), and again just before the training loop. A reader who replaced the hand-written update
(`p.data.add_(-learning_rate, p.grad.data)`) by `optimizer = torch.optim.SGD(rnn.parameters(), ...)`
created the optimizer between the two: it steps the parameters of the first RNN while train() runs and
backpropagates the second, so the loss "flows up and down" and never goes down. The author: "I have the
model instantiated twice ... move the optimizer to below the second one".

Source: https://github.com/spro/practical-pytorch/issues/9
Finds: param-not-in-optimizer @ (the model)
"""
import string

import torch
from torch import nn

from probes import Probe

ALL_LETTERS = string.ascii_letters + " .,;'"
N_LETTERS = len(ALL_LETTERS)
NAMES = {"English": ["Smith", "Brown", "Wilson", "Taylor", "Walker"],
         "Italian": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi"],
         "Japanese": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe"],
         "Polish": ["Nowak", "Kowalski", "Wisniewski", "Wojcik", "Kaminski"]}
CATEGORIES = list(NAMES)


def line_to_tensor(line):
    tensor = torch.zeros(len(line), 1, N_LETTERS)
    for li, letter in enumerate(line):
        tensor[li][0][ALL_LETTERS.find(letter)] = 1
    return tensor


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = self.i2h(combined)
        output = self.softmax(self.i2o(combined))
        return output, hidden

    def init_hidden(self):
        return torch.zeros(1, self.hidden_size)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    n_hidden, learning_rate = 128, 0.005
    rnn = RNN(N_LETTERS, n_hidden, len(CATEGORIES))            # tried out on one name in the tutorial
    optimizer = torch.optim.SGD(rnn.parameters(), lr=learning_rate)
    criterion = nn.NLLLoss()

    rnn = RNN(N_LETTERS, n_hidden, len(CATEGORIES))            # the bug: a fresh model the optimizer never saw

    def train_one(category_tensor, line_tensor):
        rnn.zero_grad()
        hidden = rnn.init_hidden()
        for i in range(line_tensor.size(0)):
            output, hidden = rnn(line_tensor[i], hidden)
        loss = criterion(output, category_tensor)
        loss.backward()
        optimizer.step()
        return output, loss.item()

    with Probe(rnn, optimizer, run_dir=run_dir):
        for it in range(40):
            category = CATEGORIES[it % len(CATEGORIES)]
            line = NAMES[category][torch.randint(0, 5, ()).item()]
            train_one(torch.tensor([CATEGORIES.index(category)]), line_to_tensor(line))
