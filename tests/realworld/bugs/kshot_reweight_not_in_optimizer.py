"""A few-shot segmentation model's k-shot reweighting layer is missing from the optimizer's module list.

The optimizer is built from an explicit list of the model's sub-networks. With more than one support shot
the model also runs `self.kshot_rw`, a small layer that weighs the shots, but it is not in that list: the
reporter asked whether kshot_rw is ever updated. It receives gradients and stays at its initial weights.

Source: https://github.com/Pbihao/HDMNet/issues/21
Finds: param-not-in-optimizer @ kshot_rw
"""
import torch
from torch import nn
from torch.nn import functional as F

SHOT, CHANNELS, SIZE = 3, 16, 16


class HDMNet(nn.Module):
    def __init__(self, shot: int = SHOT):
        super().__init__()
        self.shot = shot
        self.down_query = nn.Sequential(nn.Conv2d(3, CHANNELS, 3, padding=1), nn.ReLU())
        self.down_supp = nn.Sequential(nn.Conv2d(3, CHANNELS, 3, padding=1), nn.ReLU())
        if self.shot > 1:
            self.kshot_rw = nn.Linear(self.shot, self.shot)
        self.cls = nn.Conv2d(CHANNELS + 1, 2, 1)

    def forward(self, query, supports, support_masks):         # (B,3,H,W), (B,K,3,H,W), (B,K,1,H,W)
        q = self.down_query(query)
        b, k = supports.shape[:2]
        s = self.down_supp(supports.flatten(0, 1)).view(b, k, CHANNELS, SIZE, SIZE)
        prototypes = (s * support_masks).sum((3, 4)) / support_masks.sum((3, 4)).clamp(min=1)   # (B,K,C)
        similarity = F.cosine_similarity(q.unsqueeze(1), prototypes[..., None, None], dim=2)    # (B,K,H,W)
        if self.shot > 1:
            weights = torch.softmax(self.kshot_rw(similarity.mean((2, 3))), dim=1)          # (B,K)
            similarity = (similarity * weights[..., None, None]).sum(1, keepdim=True)
        return self.cls(torch.cat([q, similarity], dim=1))


def build_model() -> HDMNet:
    return HDMNet()


def make_batch(batch_size: int):
    query = torch.randn(batch_size, 3, SIZE, SIZE)
    supports = torch.randn(batch_size, SHOT, 3, SIZE, SIZE)
    masks = (torch.rand(batch_size, SHOT, 1, SIZE, SIZE) > 0.5).float()
    return (query, supports, masks), torch.randint(0, 2, (batch_size, SIZE, SIZE))


def make_optimizer(model):
    modules_ori = [model.down_query, model.down_supp]
    modules_new = [model.cls]                                    # the bug: model.kshot_rw is not listed
    params = [{"params": m.parameters()} for m in modules_ori]
    params += [{"params": m.parameters(), "lr": 0.01} for m in modules_new]
    return torch.optim.SGD(params, lr=0.005, momentum=0.9)


def loss_fn(logits, target):
    return F.cross_entropy(logits, target)
