"""A two-stage summariser runs its refinement decoder under torch.no_grad() during training.

The model decodes a draft summary, then refines it; the refinement pass sits in a helper wrapped in
`with torch.no_grad():` that is also called from the training step. The loss adds the refinement
term, but no gradient can flow through it: the refine decoder is never trained (the reporter: "Does
that mean you do not track gradients during training?").

Source: https://github.com/nayeon7lee/bert-summarization/issues/7
Finds: gradient-chain-broken @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, SRC, TGT, DIM = 60, 16, 8, 48


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerDecoderLayer(DIM, 4, dim_feedforward=96, dropout=0.0, batch_first=True)
        self.layers = nn.TransformerDecoder(layer, 1)
        self.out = nn.Linear(DIM, VOCAB)

    def forward(self, tgt, memory):
        return self.out(self.layers(tgt, memory))


class TwoStageSummarizer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        layer = nn.TransformerEncoderLayer(DIM, 4, dim_feedforward=96, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.draft_decoder = Decoder()
        self.refine_decoder = Decoder()

    def generate_refinement_output(self, draft_logits, memory):
        with torch.no_grad():                                   # the bug: also used for training
            draft_tokens = draft_logits.argmax(dim=-1)
            return self.refine_decoder(self.embed(draft_tokens), memory)

    def forward(self, src, tgt_in):
        memory = self.encoder(self.embed(src))
        draft_logits = self.draft_decoder(self.embed(tgt_in), memory)
        return draft_logits, self.generate_refinement_output(draft_logits, memory)


def build_model() -> TwoStageSummarizer:
    return TwoStageSummarizer()


def make_batch(batch_size: int):
    src = torch.randint(0, VOCAB, (batch_size, SRC))
    tgt = torch.randint(0, VOCAB, (batch_size, TGT + 1))
    return (src, tgt[:, :-1]), tgt[:, 1:]


def loss_fn(outputs, target):
    draft_logits, refined_logits = outputs
    return (F.cross_entropy(draft_logits.reshape(-1, VOCAB), target.reshape(-1))
            + F.cross_entropy(refined_logits.reshape(-1, VOCAB), target.reshape(-1)))
