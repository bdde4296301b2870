"""Sharpness-Aware Minimization: each step backpropagates twice, first to climb to the worst-case weights in
an L2 ball of radius rho, then to take the base optimizer's step from the original weights with the gradient
found there.

Source: davda54/sam, sam.py (class SAM(torch.optim.Optimizer): first_step saves p into state["old_p"] and adds
e_w = rho * grad / ||grad||, second_step restores old_p and calls base_optimizer.step(); param_groups shared with
the base optimizer) and the two-pass loop of its README / example/train.py (SGD base, rho 0.05).
Finds: nothing
"""
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer, rho=0.05, **kwargs):
        super().__init__(params, dict(rho=rho, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                p.add_(p.grad * scale.to(p))                 # climb to the local worst case
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data = self.state[p]["old_p"]               # back to w, keep the sharpness-aware gradient
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is not None, "SAM needs a closure that recomputes the loss"
        closure = torch.enable_grad()(closure)
        self.first_step(zero_grad=True)
        closure()
        self.second_step()

    def _grad_norm(self):
        return torch.norm(torch.stack([p.grad.norm(p=2) for group in self.param_groups for p in group["params"]
                                       if p.grad is not None]), p=2)


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.05, momentum=0.9, weight_decay=5e-4)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(25):
            x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
            loss = F.cross_entropy(model(x), y)                # first pass: gradient at w
            loss.backward()
            optimizer.first_step(zero_grad=True)
            F.cross_entropy(model(x), y).backward()            # second pass: gradient at w + e(w)
            optimizer.second_step(zero_grad=True)
            probe.log(loss=loss.item())
