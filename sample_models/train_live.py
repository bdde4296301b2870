"""A real training loop to watch live: an ordinary PyTorch script with a Probe added (two lines).

    python sample_models/train_live.py                     # writes runs/<time>-Classifier as it trains
    streamlit run app/main.py                              # Runs page: open it; the pages follow it live

A small classifier on a synthetic dataset (Gaussian clusters, one per class), a DataLoader, Adam, and a
validation pass after every epoch under model.eval() and torch.no_grad(). `--step-delay` slows each step
down to watch it; `--epochs` and `--run-dir` do what they say. `python -m probes check` also takes this file
(the model class and make_loader below).

Finds: nothing
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

try:
    from probes import Probe
except ImportError:         # run from a clone without `pip install -e .`: the package is next door
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from probes import Probe

FEATURES, CLASSES = 20, 4


class Classifier(nn.Module):
    def __init__(self, features: int = FEATURES, hidden: int = 64, classes: int = CLASSES):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def clusters(n: int, seed: int) -> TensorDataset:
    """n points around one centre per class (the centres are the same for every seed)."""
    centres = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(0)) * 2
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    return TensorDataset(centres[labels] + 3 * torch.randn(n, FEATURES, generator=g), labels)


def make_loader(batch_size: int = 32) -> DataLoader:
    return DataLoader(clusters(2048, seed=1), batch_size=batch_size, shuffle=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--run-dir", default="runs")
    p.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep after each step")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = make_loader()
    val_loader = DataLoader(clusters(512, seed=2), batch_size=256)
    with Probe(model, optimizer, run_dir=args.run_dir) as probe:             # added line 1
        print(f"run log: {probe.run_path}", flush=True)
        for epoch in range(args.epochs):
            model.train()
            for x, y in probe.wrap(train_loader):                             # added line 2
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if args.step_delay:
                    time.sleep(args.step_delay)
            model.eval()
            with torch.no_grad():
                correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in val_loader)
            print(f"epoch {epoch + 1}: last loss {loss.item():.3f}, validation accuracy "
                  f"{correct / len(val_loader.dataset):.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
