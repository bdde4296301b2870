"""word_language_model's RNNModel: LSTM with tied encoder/decoder, truncated BPTT with detached hidden state, clip 0.25.

Source: pytorch/examples, word_language_model/model.py (RNNModel) and main.py (train, repackage_hidden).
Finds: nothing
"""
import torch
from torch import nn

NTOKEN, BPTT = 200, 20


class RNNModel(nn.Module):
    def __init__(self, ninp=32, nhid=32, nlayers=2, dropout=0.2, tie_weights=True):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(NTOKEN, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, NTOKEN)
        if tie_weights:                            # "Using the Output Embedding to Improve Language Models"
            self.decoder.weight = self.encoder.weight
        self.nlayers, self.nhid = nlayers, nhid
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens, hidden):             # tokens: (seq, batch)
        output, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
        return self.decoder(self.drop(output)), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


def repackage_hidden(h):
    """Cut the hidden state from its history: backprop stops at the batch boundary (truncated BPTT)."""
    return tuple(v.detach() for v in h) if isinstance(h, tuple) else h.detach()


_state = {}


def make_batch(batch_size):
    stream = torch.randint(0, NTOKEN, (BPTT + 1, batch_size))       # a (seq, batch) slice of the batchified corpus
    return stream[:-1], stream[1:]


def train_step(model, batch, optimizer, loss_fn):
    data, targets = batch
    if "hidden" not in _state:
        _state["hidden"] = model.init_hidden(data.size(1))
    hidden = repackage_hidden(_state["hidden"])
    optimizer.zero_grad()
    output, hidden = model(data, hidden)
    _state["hidden"] = hidden
    loss = nn.functional.cross_entropy(output.view(-1, NTOKEN), targets.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    optimizer.step()
    return loss


def make_optimizer(model):
    # main.py updates p.data -= lr * p.grad by hand with lr=20: plain SGD at the same rate
    return torch.optim.SGD(model.parameters(), lr=20.0)
