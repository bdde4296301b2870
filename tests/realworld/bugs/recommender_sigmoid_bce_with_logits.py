"""A recommender toolkit squashes a pointwise model's score with a sigmoid and trains it with BCEWithLogitsLoss.

In the recommendation toolkit, the "CL" (cross-entropy) loss type builds `nn.BCEWithLogitsLoss(reduction=
"sum")` for its pointwise models, which applies the sigmoid itself, and the repository's model applied a
`torch.sigmoid` to its prediction first. The pull request that removes it says the sigmoid is not needed because
BCEWithLogitsLoss contains one, and that otherwise the loss does not converge: the doubly squashed score
never leaves [0.5, 0.73], so no negative interaction can be scored below even odds. The model is written
here after the toolkit's NeuMF (a GMF and an MLP branch joined by a linear predict layer).

Source: https://github.com/yudi-mars/daisyRec/pull/15
Finds: loss-input-mismatch
"""
import torch
from torch import nn

from probes import Probe

USERS, ITEMS, FACTORS = 50, 80, 8


class NeuMF(nn.Module):
    def __init__(self, num_layers=2, dropout=0.1):
        super().__init__()
        self.embed_user_GMF = nn.Embedding(USERS, FACTORS)
        self.embed_item_GMF = nn.Embedding(ITEMS, FACTORS)
        mlp_dim = FACTORS * 2 ** (num_layers - 1)
        self.embed_user_MLP = nn.Embedding(USERS, mlp_dim)
        self.embed_item_MLP = nn.Embedding(ITEMS, mlp_dim)
        layers, width = [], mlp_dim * 2
        for _ in range(num_layers):
            layers += [nn.Dropout(dropout), nn.Linear(width, width // 2), nn.ReLU()]
            width //= 2
        self.MLP_layers = nn.Sequential(*layers)
        self.predict_layer = nn.Linear(FACTORS * 2, 1)
        for emb in (self.embed_user_GMF, self.embed_item_GMF, self.embed_user_MLP, self.embed_item_MLP):
            nn.init.normal_(emb.weight, std=0.01)

    def forward(self, user, item):
        gmf = self.embed_user_GMF(user) * self.embed_item_GMF(item)
        mlp = self.MLP_layers(torch.cat([self.embed_user_MLP(user), self.embed_item_MLP(item)], dim=-1))
        prediction = self.predict_layer(torch.cat([gmf, mlp], dim=-1)).view(-1)
        return torch.sigmoid(prediction)


def train(run_dir):
    torch.manual_seed(0)
    taste = torch.randn(USERS, 1) + torch.randn(1, ITEMS)      # some users click a lot, some items sell well
    model = NeuMF()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.BCEWithLogitsLoss(reduction="sum")        # loss_type "CL"
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(40):
            user, item = torch.randint(0, USERS, (64,)), torch.randint(0, ITEMS, (64,))
            label = (taste[user, item] > 0).float()          # implicit feedback with sampled negatives
            model.zero_grad()
            pos_pred = model(user, item)
            loss = criterion(pos_pred, label)                # the bug: sigmoid outputs into a with-logits loss
            loss.backward()
            optimizer.step()
