"""A multimodal NER model builds its optimizer param groups by name and never appends the CRF and fc groups.

The trainer walks named_parameters() and puts the text encoder's and the image encoder's parameters into
param groups with their own learning rates; it also collects the `crf` and `fc` parameters, but the
`parameters.append(params)` for that last group is missing. Those two layers get gradients every step and
keep their initial values (the maintainers confirmed it and said a fix had not been pushed).

Source: https://github.com/zjunlp/HVPNeT/issues/5
Finds: param-not-in-optimizer @ fc, param-not-in-optimizer @ crf
"""
import torch
from torch import nn

VOCAB, SEQ, DIM, TAGS = 80, 10, 32, 5


class CRF(nn.Module):
    """Linear-chain CRF: negative log-likelihood of the gold tag sequence."""

    def __init__(self, num_tags: int):
        super().__init__()
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))

    def forward(self, emissions, tags):                          # (B, T, K), (B, T)
        b, t, _ = emissions.shape
        idx = torch.arange(b)
        score = self.start_transitions[tags[:, 0]] + emissions[idx, 0, tags[:, 0]]
        for i in range(1, t):
            score = score + self.transitions[tags[:, i - 1], tags[:, i]] + emissions[idx, i, tags[:, i]]
        score = score + self.end_transitions[tags[:, -1]]
        alpha = self.start_transitions + emissions[:, 0]
        for i in range(1, t):
            alpha = torch.logsumexp(alpha.unsqueeze(2) + self.transitions + emissions[:, i].unsqueeze(1), dim=1)
        log_z = torch.logsumexp(alpha + self.end_transitions, dim=1)
        return (log_z - score).mean()


class HMNeTNERModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.bert = nn.ModuleDict({
            "embeddings": nn.Embedding(VOCAB, DIM),
            "encoder": nn.TransformerEncoder(
                nn.TransformerEncoderLayer(DIM, 4, dim_feedforward=64, dropout=0.0, batch_first=True), 1,
                enable_nested_tensor=False)})
        self.image_model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, DIM))
        self.fc = nn.Linear(DIM, TAGS)
        self.crf = CRF(TAGS)

    def forward(self, tokens, images):
        text = self.bert["encoder"](self.bert["embeddings"](tokens))
        return self.fc(text + self.image_model(images).unsqueeze(1))             # emissions


def build_model() -> HMNeTNERModel:
    return HMNeTNERModel()


def make_batch(batch_size: int):
    tokens = torch.randint(0, VOCAB, (batch_size, SEQ))
    images = torch.randn(batch_size, 3, 16, 16)
    return (tokens, images), torch.randint(0, TAGS, (batch_size, SEQ))


def make_optimizer(model):
    parameters = []
    params = {"lr": 5e-5, "params": []}
    for name, param in model.named_parameters():
        if "bert" in name:
            params["params"].append(param)
    parameters.append(params)
    params = {"lr": 1e-3, "params": []}
    for name, param in model.named_parameters():
        if "image_model" in name:
            params["params"].append(param)
    parameters.append(params)
    params = {"lr": 5e-2, "params": []}
    for name, param in model.named_parameters():
        if "crf" in name or name.startswith("fc"):
            params["params"].append(param)
    # the bug: parameters.append(params) is missing for the crf/fc group
    return torch.optim.AdamW(parameters, lr=1e-3)


def train_step(model, batch, optimizer, loss_fn):
    (tokens, images), tags = batch
    loss = model.crf(model(tokens, images), tags)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
