"""Data-parallel training (DistributedDataParallel) with a Probe on every rank: the multi-rank view.

    torchrun --nproc_per_node=2 sample_models/train_ddp.py          # gloo on CPU; a log per rank, one run
    torchrun --nproc_per_node=2 sample_models/train_ddp.py --bug    # rank 0 alone loads the warm start
    streamlit run app/main.py                                       # Runs: open it; the Ranks page overlays them

Each rank trains on its shard of a synthetic dataset (DistributedSampler), starting from a warm-start
checkpoint. The fixed way loads it on every rank before wrapping the model; with --bug, rank 0 loads it
after wrapping, so DistributedDataParallel's start-up broadcast has already happened and the ranks train
different weights from then on (the averaged gradient cannot bring them back together).
`python -m probes check` takes this file too (the model class and make_loader, one process, so nothing to
compare); with --bug under torchrun, `python -m probes report` on the run finds ranks-out-of-sync.

Finds: nothing
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

try:
    from probes import Probe
except ImportError:         # run from a clone without `pip install -e .`: the package is next door
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from probes import Probe

FEATURES, CLASSES = 20, 4


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def dataset(n: int = 2048) -> TensorDataset:
    centres = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(0)) * 2
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    return TensorDataset(centres[labels] + 3 * torch.randn(n, FEATURES, generator=g), labels)


def make_loader(batch_size: int = 32) -> DataLoader:
    return DataLoader(dataset(), batch_size=batch_size, shuffle=True)


def warm_start() -> dict:
    """Stands in for a checkpoint file: the same weights on every rank that asks for them."""
    torch.manual_seed(1234)
    return Classifier().state_dict()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--run-dir", default="runs")
    p.add_argument("--run-name", default=None)
    p.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep after each step")
    p.add_argument("--bug", action="store_true", help="load the warm start on rank 0 only, after wrapping")
    args = p.parse_args(argv)
    dist.init_process_group("gloo")            # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
    rank = dist.get_rank()
    torch.manual_seed(rank)                    # each rank starts from its own random init, as in real jobs
    model = Classifier()
    if args.bug:
        model = DistributedDataParallel(model)
        if rank == 0:
            model.module.load_state_dict(warm_start())      # the bug: after DDP's broadcast, on one rank
    else:
        model.load_state_dict(warm_start())                 # every rank, before wrapping
        model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    data = dataset()
    sampler = DistributedSampler(data, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=32, sampler=sampler)
    with Probe(model, optimizer, run_dir=args.run_dir, run_name=args.run_name) as probe:
        if rank == 0:
            print(f"run log: {probe.run_path}", flush=True)
        for epoch in range(args.epochs):
            sampler.set_epoch(epoch)
            for x, y in probe.wrap(loader):
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if args.step_delay:
                    time.sleep(args.step_delay)
            if rank == 0:
                print(f"epoch {epoch + 1}: last loss {loss.item():.3f}", flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
