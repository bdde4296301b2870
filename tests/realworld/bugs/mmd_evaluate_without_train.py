"""A multimodal dialogue model's evaluate() calls model.eval(), and training resumes without model.train().

The multimodal-dialogue (MMD) baseline trains a hierarchical encoder-decoder: an RNN encodes each text
utterance, image features of each turn are projected and concatenated, a context RNN runs over the turns and
an RNN decoder generates the response, with dropout 0.4. Every `evaluate_every` epochs, train.py calls
`evaluate(...)`, which starts with `model.eval()`, and the next epoch trains on with dropout disabled. The
reporter asked whether that affects performance; another user hit the same problem and fixed it by calling
model.train() after evaluate.

Source: https://github.com/shubhamagarwal92/mmd/issues/14
Finds: train-mode-off
"""
import torch
from torch import nn

from probes import Probe

VOCAB, EMB, HID, IMG, TURNS, UTT, PAD = 60, 16, 32, 24, 2, 6, 0


class MultimodalHRED(nn.Module):
    def __init__(self, dropout=0.4):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMB, padding_idx=PAD)
        self.text_encoder = nn.GRU(EMB, HID, batch_first=True)
        self.image_encoder = nn.Linear(IMG, HID)
        self.context_encoder = nn.GRU(2 * HID, HID, batch_first=True)
        self.decoder = nn.GRU(EMB, HID, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(HID, VOCAB)

    def forward(self, text, images, dec_input):
        b = text.shape[0]                                    # text: (B, turns, len); images: (B, turns, IMG)
        _, h = self.text_encoder(self.dropout(self.embedding(text.flatten(0, 1))))
        turns = torch.cat([h[-1].view(b, TURNS, HID), torch.tanh(self.image_encoder(images))], dim=-1)
        _, context = self.context_encoder(turns)
        dec_out, _ = self.decoder(self.dropout(self.embedding(dec_input)), context)   # teacher forcing
        return self.out(self.dropout(dec_out))


def batch(n):
    text = torch.randint(1, VOCAB, (n, TURNS, UTT))
    images = torch.randn(n, TURNS, IMG)
    response = torch.cat([text[:, -1, 1:], torch.full((n, 1), 2)], dim=1)          # echo the last turn
    dec_input = torch.cat([torch.ones(n, 1, dtype=torch.long), response[:, :-1]], dim=1)
    return text, images, dec_input, response


def evaluate(model, valid, loss_criterion):
    model.eval()                                             # the bug: the training loop never switches back
    total = 0.0
    with torch.no_grad():
        for text, images, dec_input, response in valid:
            logits = model(text, images, dec_input)
            total += loss_criterion(logits.reshape(-1, VOCAB), response.reshape(-1)).item()
    return total / len(valid)


def train(run_dir):
    torch.manual_seed(0)
    model = MultimodalHRED()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    train_data, valid = [batch(8) for _ in range(10)], [batch(8) for _ in range(2)]
    evaluate_every = 1
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(3):
            for text, images, dec_input, response in train_data:
                optimizer.zero_grad()
                logits = model(text, images, dec_input)
                loss = loss_criterion(logits.reshape(-1, VOCAB), response.reshape(-1))
                loss.backward()
                optimizer.step()
            if (epoch + 1) % evaluate_every == 0:
                probe.log(valid_loss=evaluate(model, valid, loss_criterion))
