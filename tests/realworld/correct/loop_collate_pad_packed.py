"""Variable-length sequences through a DataLoader (num_workers=0) whose collate_fn pads them with
pad_sequence; a GRU reads them packed with pack_padded_sequence, so padding never enters the state.

Source: PyTorch, torch.nn.utils.rnn.pad_sequence / pack_padded_sequence (torch/nn/utils/rnn.py) and the
collate_fn argument of torch.utils.data.DataLoader (torch/utils/data/dataloader.py), the padding-collate
pattern of pytorch/tutorials beginner_source/text_sentiment_ngrams_tutorial.py collate_batch (there with
offsets), here with padding and packing.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import DataLoader, Dataset

from probes import Probe

VOCAB, PAD, CLASSES = 50, 0, 2


class ParityDataset(Dataset):
    """Token sequences of 4-20 tokens; the label says whether token 1 occurs an odd number of times."""

    def __init__(self, n=256):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for _ in range(n):
            length = int(torch.randint(4, 21, (1,), generator=g))
            seq = torch.randint(1, VOCAB, (length,), generator=g)
            self.items.append((seq, int((seq == 1).sum()) % 2))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate_batch(batch):
    seqs, labels = zip(*batch)
    lengths = torch.tensor([len(s) for s in seqs])
    return pad_sequence(list(seqs), batch_first=True, padding_value=PAD), lengths, torch.tensor(labels)


class GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32, padding_idx=PAD)
        self.gru = nn.GRU(32, 48, batch_first=True)
        self.fc = nn.Linear(48, CLASSES)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.fc(h[-1])


def train(run_dir):
    torch.manual_seed(0)
    loader = DataLoader(ParityDataset(), batch_size=16, shuffle=True, num_workers=0, collate_fn=collate_batch)
    model = GRUClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(2):
            for tokens, lengths, labels in probe.wrap(loader):
                loss = F.cross_entropy(model(tokens, lengths), labels)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
