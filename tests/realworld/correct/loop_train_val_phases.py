"""Each epoch runs a "train" phase (model.train(), grad on) and a "val" phase (model.eval(), grad off); BatchNorm and Dropout.

Source: pytorch/tutorials, beginner_source/transfer_learning_tutorial.py (train_model: for phase in
['train', 'val'], model.train() or model.eval(), torch.set_grad_enabled(phase == 'train'), step only in the
train phase, a StepLR scheduler stepped once per epoch).
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe


def make_loader(n, batch):
    x = torch.randn(n, 3, 16, 16)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def train(run_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(32, 2))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
    dataloaders = {"train": make_loader(160, 16), "val": make_loader(48, 16)}
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for epoch in range(3):
            for phase in ["train", "val"]:
                model.train() if phase == "train" else model.eval()
                running_loss, running_corrects = 0.0, 0
                for inputs, labels in dataloaders[phase]:
                    optimizer.zero_grad()
                    with torch.set_grad_enabled(phase == "train"):
                        outputs = model(inputs)
                        loss = criterion(outputs, labels)
                        if phase == "train":
                            loss.backward()
                            optimizer.step()
                    running_loss += loss.item() * inputs.size(0)
                    running_corrects += (outputs.argmax(1) == labels).sum().item()
                if phase == "train":
                    scheduler.step()
                else:
                    probe.log(val_loss=running_loss / 48, val_acc=running_corrects / 48)
