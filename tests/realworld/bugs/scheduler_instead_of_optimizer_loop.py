"""A depth-estimation training loop calls scheduler.step() when a scheduler is configured, else optimizer.step().

Adding a learning-rate scheduler made the loss stop going down: the loop was written as
`if scheduler: scheduler.step() else: optimizer.step()`, so with a scheduler the optimizer never steps and
not one weight changes (the maintainer: "scheduler.step() only changes learning rate, but does not perform
optimizer step").

Source: https://github.com/ClementPinard/SfmLearner-Pytorch/issues/5
Finds: optimizer-not-stepping @ (the model)
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from probes import Probe


class DispNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.upconv2 = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
        self.upconv1 = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        self.predict_disp = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = F.relu(self.upconv1(F.relu(self.upconv2(x))))
        return torch.sigmoid(self.predict_disp(x)) * 10 + 0.01


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    images = torch.rand(128, 3, 32, 32)
    depth = images.mean(dim=1, keepdim=True) * 5 + 1
    loader = DataLoader(TensorDataset(images, depth), batch_size=8, shuffle=True)
    disp_net = DispNet()
    optimizer = torch.optim.Adam(disp_net.parameters(), lr=2e-4, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)   # --scheduler step
    with Probe(disp_net, optimizer, run_dir=run_dir) as probe:
        for epoch in range(3):
            for img, gt in probe.wrap(loader):
                loss = F.l1_loss(1 / disp_net(img), gt)
                optimizer.zero_grad()
                loss.backward()
                if scheduler:
                    scheduler.step()                            # the bug: replaces optimizer.step()
                else:
                    optimizer.step()
