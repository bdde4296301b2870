"""A video-feature LSTM classifier keeps its hidden state on the model across batches: every step gets slower.

The LSTM stores `self.hidden` in __init__ and forward() does `lstm_out, self.hidden = self.lstm(x, self.hidden)`,
so each batch starts from the previous batch's state, graph and all. Backward then has to run through every
earlier batch (to run at all the loop must retain the graph), and the reported log shows the time per
iteration climbing steadily: the chain of graphs, and the memory it holds, grows with every step. (Current
PyTorch stops such a loop at the second backward: the old graph saved weights that optimizer.step() has
since changed in place.) The usual fix: re-initialise or detach the hidden state for every batch.

Source: https://github.com/pytorch/pytorch/issues/2769
Finds: memory-growth
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe

FEATURES, HIDDEN, CLIP, CLASSES, BATCH = 128, 128, 12, 101, 8


class LSTM(nn.Module):
    def __init__(self, input_len=FEATURES, hidden_len=HIDDEN, target_size=CLASSES):
        super().__init__()
        self.hidden_len = hidden_len
        self.lstm = nn.LSTM(input_len, hidden_len, batch_first=True)
        self.hidden2class = nn.Linear(hidden_len, target_size)
        self.hidden = self.init_hidden()

    def init_hidden(self):
        return torch.zeros(1, BATCH, self.hidden_len), torch.zeros(1, BATCH, self.hidden_len)

    def forward(self, x):
        lstm_out, self.hidden = self.lstm(x, self.hidden)      # the bug: state (and graph) carried over
        return F.log_softmax(self.hidden2class(lstm_out[:, -1, :]), dim=1)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    clips = torch.randn(40 * BATCH, CLIP, FEATURES)                   # pooled CNN features per frame
    labels = torch.randint(0, CLASSES, (40 * BATCH,))
    loader = DataLoader(TensorDataset(clips, labels), batch_size=BATCH, shuffle=True, drop_last=True)
    model = LSTM()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.NLLLoss()
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        model.train()
        for clip, target in probe.wrap(loader):
            output = model(clip)
            loss = criterion(output, target)
            optimizer.zero_grad()
            loss.backward(retain_graph=True)                        # needed once the state is carried over
            optimizer.step()
