"""PointNet classifier: learned 3x3 input alignment (T-Net) and 64x64 feature alignment, shared per-point MLPs
as 1x1 Conv1d + BatchNorm, a symmetric max pool over points, and the orthogonality regulariser on the feature
transform.

Source: fxia22/pointnet.pytorch, pointnet/model.py (STN3d, STNkd, PointNetfeat, PointNetCls,
feature_transform_regularizer) and utils/train_classification.py (Adam lr 0.001 betas (0.9, 0.999), NLL on
log-softmax, regulariser weight 0.001); widths reduced.
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

POINTS, CLASSES = 128, 8


class STNkd(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k
        self.conv1, self.conv2, self.conv3 = nn.Conv1d(k, 32, 1), nn.Conv1d(32, 64, 1), nn.Conv1d(64, 128, 1)
        self.fc1, self.fc2, self.fc3 = nn.Linear(128, 64), nn.Linear(64, 32), nn.Linear(32, k * k)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm1d(32), nn.BatchNorm1d(64), nn.BatchNorm1d(128)
        self.bn4, self.bn5 = nn.BatchNorm1d(64), nn.BatchNorm1d(32)

    def forward(self, x):
        b = x.size(0)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = torch.max(x, 2)[0]
        x = F.relu(self.bn4(self.fc1(x)))
        x = F.relu(self.bn5(self.fc2(x)))
        x = self.fc3(x) + torch.eye(self.k).flatten()           # starts near the identity transform
        return x.view(b, self.k, self.k)


class PointNetFeat(nn.Module):
    def __init__(self):
        super().__init__()
        self.stn = STNkd(3)
        self.fstn = STNkd(64)
        self.conv1, self.conv2, self.conv3 = nn.Conv1d(3, 64, 1), nn.Conv1d(64, 64, 1), nn.Conv1d(64, 256, 1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm1d(64), nn.BatchNorm1d(64), nn.BatchNorm1d(256)

    def forward(self, x):                                        # (B, 3, N)
        trans = self.stn(x)
        x = torch.bmm(x.transpose(2, 1), trans).transpose(2, 1)
        x = F.relu(self.bn1(self.conv1(x)))
        trans_feat = self.fstn(x)
        x = torch.bmm(x.transpose(2, 1), trans_feat).transpose(2, 1)
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        return torch.max(x, 2)[0], trans_feat


class PointNetCls(nn.Module):
    def __init__(self):
        super().__init__()
        self.feat = PointNetFeat()
        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 128), nn.Linear(128, 64), nn.Linear(64, CLASSES)
        self.dropout = nn.Dropout(p=0.3)
        self.bn1, self.bn2 = nn.BatchNorm1d(128), nn.BatchNorm1d(64)

    def forward(self, x):
        x, trans_feat = self.feat(x)
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout(self.fc2(x))))
        return F.log_softmax(self.fc3(x), dim=1), trans_feat


def feature_transform_regularizer(trans):
    eye = torch.eye(trans.size(1))[None]
    return torch.mean(torch.norm(torch.bmm(trans, trans.transpose(2, 1)) - eye, dim=(1, 2)))


def build_model():
    return PointNetCls()


def make_batch(batch_size):
    labels = torch.randint(0, CLASSES, (batch_size,))
    # each class a differently stretched Gaussian cloud, randomly rotated about z
    scale = 0.5 + (labels.float()[:, None] + 1) / CLASSES * torch.tensor([1.0, 0.5, 0.25])
    pts = torch.randn(batch_size, POINTS, 3) * scale[:, None, :]
    angle = torch.rand(batch_size) * 6.2832
    c, s = angle.cos(), angle.sin()
    rot = torch.stack([torch.stack([c, -s, 0 * c], -1), torch.stack([s, c, 0 * c], -1),
                       torch.tensor([0.0, 0.0, 1.0]).expand(batch_size, 3)], dim=1)
    return torch.bmm(pts, rot).transpose(2, 1), labels


def loss_fn(outputs, labels):
    log_probs, trans_feat = outputs
    return F.nll_loss(log_probs, labels) + 0.001 * feature_transform_regularizer(trans_feat)


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
