"""GRU encoder-decoder with Bahdanau (additive) attention, trained with teacher forcing and NLL over log-softmax.

Source: pytorch/tutorials, intermediate_source/seq2seq_translation_tutorial.py (EncoderRNN, BahdanauAttention,
AttnDecoderRNN fed the target tokens when target_tensor is given, NLLLoss, Adam lr 0.001, dropout 0.1).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

SRC_VOCAB, TGT_VOCAB, HIDDEN, MAX_LEN = 64, 48, 32, 10
SOS, EOS = 0, 1


class EncoderRNN(nn.Module):
    def __init__(self, dropout_p=0.1):
        super().__init__()
        self.embedding = nn.Embedding(SRC_VOCAB, HIDDEN)
        self.gru = nn.GRU(HIDDEN, HIDDEN, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, src):
        return self.gru(self.dropout(self.embedding(src)))


class BahdanauAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.Wa = nn.Linear(HIDDEN, HIDDEN)
        self.Ua = nn.Linear(HIDDEN, HIDDEN)
        self.Va = nn.Linear(HIDDEN, 1)

    def forward(self, query, keys):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys))).squeeze(2).unsqueeze(1)   # (B, 1, S)
        weights = F.softmax(scores, dim=-1)
        return torch.bmm(weights, keys), weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, dropout_p=0.1):
        super().__init__()
        self.embedding = nn.Embedding(TGT_VOCAB, HIDDEN)
        self.attention = BahdanauAttention()
        self.gru = nn.GRU(2 * HIDDEN, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, TGT_VOCAB)
        self.dropout = nn.Dropout(dropout_p)

    def forward_step(self, token, hidden, encoder_outputs):
        embedded = self.dropout(self.embedding(token))
        context, _ = self.attention(hidden.permute(1, 0, 2), encoder_outputs)
        output, hidden = self.gru(torch.cat((embedded, context), dim=2), hidden)
        return self.out(output), hidden

    def forward(self, encoder_outputs, encoder_hidden, target=None):
        b = encoder_outputs.size(0)
        token = torch.full((b, 1), SOS, dtype=torch.long)
        hidden, outputs = encoder_hidden, []
        for i in range(MAX_LEN):
            logits, hidden = self.forward_step(token, hidden, encoder_outputs)
            outputs.append(logits)
            if target is not None:
                token = target[:, i].unsqueeze(1)                 # teacher forcing
            else:
                token = logits.argmax(-1).detach()                # greedy: its own prediction
        return F.log_softmax(torch.cat(outputs, dim=1), dim=-1)


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = EncoderRNN()
        self.decoder = AttnDecoderRNN()

    def forward(self, src, target=None):
        encoder_outputs, encoder_hidden = self.encoder(src)
        return self.decoder(encoder_outputs, encoder_hidden, target)


def build_model():
    return Seq2Seq()


def make_batch(batch_size):
    src = torch.randint(2, SRC_VOCAB, (batch_size, MAX_LEN))
    tgt = (src % (TGT_VOCAB - 2)) + 2                          # a learnable token mapping
    tgt[:, -1] = EOS
    return (src, tgt), tgt


def loss_fn(log_probs, target):
    return F.nll_loss(log_probs.reshape(-1, TGT_VOCAB), target.reshape(-1))


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


@torch.no_grad()
def eval_step(model, batch):
    model.eval()
    (src, _), _ = batch
    model(src)                                                 # greedy decoding, no teacher forcing
    model.train()
