"""A word language model anneals its learning rate with integer division: after a few epochs lr is 0.

The example divides the learning rate by 4 whenever the validation loss stops improving. The reporter's
log shows `lr 1.00` in epoch 14 and `lr 0.00` from epoch 15 on, with the loss flat: the division was done
on integers ("should be dividing the learning rate by 4.0 and not 4"), so 20 -> 5 -> 1 -> 0, and the
hand-written SGD update `p.data.add_(p.grad, alpha=-lr)` then changes nothing. (Python 3 turns `/` into
true division; the report's Python-2 integer division is written `//` here.)

Source: https://github.com/pytorch/examples/issues/130
Finds: weights-not-updating @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

NTOKENS, BPTT, BATCH, CLIP = 200, 10, 8, 0.25


class RNNModel(nn.Module):
    def __init__(self, ninp: int = 32, nhid: int = 64):
        super().__init__()
        self.encoder = nn.Embedding(NTOKENS, ninp)
        self.rnn = nn.LSTM(ninp, nhid, batch_first=True)
        self.decoder = nn.Linear(nhid, NTOKENS)

    def forward(self, x):
        out, _ = self.rnn(self.encoder(x))
        return self.decoder(out)


def batches(stream: torch.Tensor):
    data = stream[: (len(stream) - 1) // (BATCH * BPTT) * BATCH * BPTT + 1]
    cols = (len(data) - 1) // BATCH
    src, tgt = data[:-1].view(BATCH, cols), data[1:].view(BATCH, cols)
    for i in range(0, cols, BPTT):
        yield src[:, i:i + BPTT], tgt[:, i:i + BPTT]


def evaluate(model, stream) -> float:
    model.eval()
    with torch.no_grad():
        losses = [F.cross_entropy(model(x).reshape(-1, NTOKENS), y.reshape(-1)).item() for x, y in batches(stream)]
    model.train()
    return sum(losses) / len(losses)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    train_stream = torch.randint(0, NTOKENS, (BATCH * BPTT * 20 + 1,))
    val_stream = torch.randint(0, NTOKENS, (BATCH * BPTT * 4 + 1,))
    model = RNNModel()
    lr, best_val_loss = 20, None                                # --lr 20
    with Probe(model, None, run_dir=run_dir) as probe:
        for epoch in range(8):
            for x, y in batches(train_stream):
                model.zero_grad()
                loss = F.cross_entropy(model(x).reshape(-1, NTOKENS), y.reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
                for p in model.parameters():
                    p.data.add_(p.grad, alpha=-lr)
                probe.log(loss=loss.item(), lr=lr)
                probe.step()
            val_loss = evaluate(model, val_stream)
            if not best_val_loss or val_loss < best_val_loss:
                best_val_loss = val_loss
            else:
                lr //= 4                                        # the bug: integer division, 20 -> 5 -> 1 -> 0
