"""An image-similarity training script zeroes the gradients and steps the optimizer, but never calls backward().

The visual-localisation code trains a Siamese-style similarity model: a convolutional BranchNet embeds an
anchor, a positive and a negative image, a DecisionNet scores the anchor/positive and anchor/negative pairs
with a sigmoid, and BCELoss(reduction="none") compares them with ones and zeros. The published loop calls
`optimizer.zero_grad()`, computes the loss, accumulates `loss.mean()` for logging and calls
`optimizer.step()`, but the `loss.mean().backward()` line had been deleted while cleaning the code for
publication: no gradient is ever computed and Adam leaves every weight where it was initialised.

Source: https://github.com/aalto-intelligent-robotics/sivl/issues/2
Finds: optimizer-not-stepping
"""
import torch
from torch import nn

from probes import Probe


class BranchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=3)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.conv3 = nn.Conv2d(32, 32, kernel_size=3)
        self.pool = nn.MaxPool2d(2)
        self.adaptivemaxpool = nn.AdaptiveMaxPool2d(4)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return torch.flatten(self.adaptivemaxpool(torch.relu(self.conv3(x))), 1)


class DecisionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(4 * 4 * 32 * 2, 64)
        self.linear2 = nn.Linear(64, 1)

    def forward(self, x1, x2):
        return torch.sigmoid(self.linear2(torch.relu(self.linear1(torch.cat((x1, x2), dim=1)))))


class SimilarityModel(nn.Module):
    """The two networks the script trains with one optimizer, held together for the probe."""

    def __init__(self):
        super().__init__()
        self.branchmodel = BranchNet()
        self.decisionmodel = DecisionNet()


def triplet(n):
    anchor = torch.rand(n, 3, 96, 96)
    positive = (anchor + 0.1 * torch.randn_like(anchor)).clamp(0, 1)     # the same place, another view
    negative = torch.rand(n, 3, 96, 96)
    return anchor, positive, negative


def train(run_dir):
    torch.manual_seed(0)
    model = SimilarityModel()
    branchmodel, decisionmodel = model.branchmodel, model.decisionmodel
    optimizer = torch.optim.Adam(list(branchmodel.parameters()) + list(decisionmodel.parameters()), lr=1e-5,
                                 betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-8)
    criterion = nn.BCELoss(reduction="none")
    cumulative_loss = 0.0
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        branchmodel.train()
        decisionmodel.train()
        for i in range(20):
            anchorImage, positiveImage, negativeImage = triplet(4)
            optimizer.zero_grad()
            anc, pos, neg = branchmodel(anchorImage), branchmodel(positiveImage), branchmodel(negativeImage)
            ancToPos, ancToNeg = decisionmodel(anc, pos), decisionmodel(anc, neg)
            samples = torch.cat((ancToPos, ancToNeg))
            targets = torch.cat((torch.ones_like(ancToPos), torch.zeros_like(ancToNeg)))
            loss = criterion(samples, targets)
            cumulative_loss += loss.mean().item() * anchorImage.shape[0]
            probe.log(loss=loss.mean().item())
            optimizer.step()                                 # the bug: loss.mean().backward() is missing above
