"""Single-target regression: the (B, 1) head output is squeezed to (B,) before MSELoss against a (B,) target.

Source: Hugging Face transformers, BertForSequenceClassification (models/bert/modeling_bert.py): for
problem_type "regression" with num_labels == 1 the loss is MSELoss()(logits.squeeze(), labels.squeeze()); a
small tabular MLP stands in for BERT.
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe


class Regressor(nn.Module):
    def __init__(self, features=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU())
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        return self.head(self.body(x))                       # (B, 1)


def train(run_dir):
    torch.manual_seed(0)
    model = Regressor()
    loss_fct = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    w = torch.randn(8)
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(40):
            x = torch.randn(32, 8)
            labels = torch.sin(x @ w) + 0.1 * x[:, 0] ** 2    # (B,)
            logits = model(x)
            loss = loss_fct(logits.squeeze(-1), labels.squeeze(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
