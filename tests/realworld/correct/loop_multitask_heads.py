"""Multi-task learning on a shared trunk: a two-layer MLP feature head feeding a class-score head and a
box-regression head, trained on a weighted sum of cross-entropy and smooth-L1.

Source: pytorch/vision, torchvision/models/detection/faster_rcnn.py (TwoMLPHead: fc6, fc7 with ReLU;
FastRCNNPredictor: cls_score and bbox_pred on the same features) and roi_heads.py (fastrcnn_loss:
cross-entropy plus smooth_l1_loss with beta 1/9 on the box deltas of the true class); torchvision sums the two
losses unweighted, here the box term is weighted 0.5; pooled RoI features are random stand-ins.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe

IN, REPR, CLASSES = 64, 64, 5
W_CLS, W_BOX = 1.0, 0.5


class TwoMLPHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc6 = nn.Linear(IN, REPR)
        self.fc7 = nn.Linear(REPR, REPR)

    def forward(self, x):
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class FastRCNNPredictor(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_score = nn.Linear(REPR, CLASSES)
        self.bbox_pred = nn.Linear(REPR, CLASSES * 4)

    def forward(self, x):
        return self.cls_score(x), self.bbox_pred(x)


class BoxHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.box_head = TwoMLPHead()
        self.box_predictor = FastRCNNPredictor()

    def forward(self, features):
        return self.box_predictor(self.box_head(features))


def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    cls_loss = F.cross_entropy(class_logits, labels)
    pos = torch.where(labels > 0)[0]                          # background (class 0) has no box
    box = box_regression.reshape(labels.size(0), -1, 4)[pos, labels[pos]]
    box_loss = F.smooth_l1_loss(box, regression_targets[pos], beta=1 / 9, reduction="sum") / labels.numel()
    return cls_loss, box_loss


def train(run_dir):
    torch.manual_seed(0)
    model = BoxHead()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    a, b = torch.randn(IN, CLASSES), torch.randn(IN, 4) * 0.1
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            x = torch.randn(64, 4, 4, 4)                     # 64 sampled RoIs, 4x4 pooled, 4 channels
            labels = (x.flatten(1) @ a).argmax(1)
            deltas = torch.tanh(x.flatten(1) @ b)
            class_logits, box_regression = model(x)
            cls_loss, box_loss = fastrcnn_loss(class_logits, box_regression, labels, deltas)
            loss = W_CLS * cls_loss + W_BOX * box_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            probe.log(cls_loss=cls_loss.item(), box_loss=box_loss.item())
