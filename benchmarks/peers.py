"""Step-time overhead of ForgeScope and of its peers, side by side in one process, interleaved.

    pip install -r requirements-bench.txt              # the peers; never part of the main install
    .venv/bin/python benchmarks/peers.py               # table + benchmarks/results/peers.png
    .venv/bin/python benchmarks/peers.py --quick       # smoke run

Configurations, each with its own copy of the model and its own Adam, built from the same seed:
  none                 the plain loop
  ForgeScope defaults  Probe(model, opt) and probe.wrap(loader)
  ForgeScope every     every statistic on every step (grad_norm, update_size, activations, memory, tree = 1)
  TensorBoard          SummaryWriter.add_histogram of every parameter and every gradient, every step
  wandb.watch          wandb.watch(model, log="all", log_freq=1), offline, and wandb.log(loss) every step
  Cockpit economy      Cockpit(configuration("economy")): BackPACK-extended model and loss, every step

Models (CPU, one thread, batch 64): (a) MLP 784-2048-1536-256-10, (b) CNN 3x(conv+bn+relu), (c) MLP of
60 Linear(256, 256), (d) a 12-layer transformer encoder on 32-token sequences.

Rounds run a block of steps of every configuration in turn, in a new random order each round, each block after
one unrecorded step (the first step after another configuration ran pays for its caches); the first round
is warm-up (a configuration more than 10x slower than the plain loop there then runs one step per round).
Ratios are to "none" in the same rounds: each step time is divided by none's median step time in its round
(noise that outlasts a round cancels), then ForgeScope's steps are amortized (its periodic statistics
weighted by how often they come, see overhead.py); the peers do the same work every step, so theirs is the
median. A peer that is not installed or fails on a model is reported with its error.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import overhead  # noqa: E402
import plotting  # noqa: E402
from probes import DEFAULTS  # noqa: E402

BATCH = overhead.BATCH
SEED = overhead.SEED
GOAL_DEFAULTS, GOAL_EVERY, GOAL_LESS = 1.03, 1.25, 5.0


MODELS = overhead.MODELS
OURS = {"none": None, "ForgeScope defaults": dict(DEFAULTS),
        "ForgeScope every step": {**overhead.EVERY_STEP}}
PEERS = ("TensorBoard histograms", "wandb.watch all", "Cockpit economy")


# -- peers: the same loop, with the peer's calls where its documentation puts them ----------------------
class Peer:
    """A peer configuration with overhead.Runner's interface: run(steps, record), stats(), close()."""

    def __init__(self, name: str, build, batches, work: Path):
        self.name, self.cadences = name, None
        torch.manual_seed(SEED)
        self.model = build()
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batches = itertools.cycle(batches)
        self.work = work
        self.k = 0
        self.times: list[tuple[int, float]] = []
        self.rounds: list[int] = []
        self.round = 0
        self.setup()

    def setup(self):
        pass

    def step(self, x, y):
        loss = self.loss_fn(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def run(self, steps: int, record: bool) -> None:
        perf = time.perf_counter
        with overhead.only_listener(None):      # open Probes of other configurations do not listen
            for _ in range(steps):
                t0 = perf()
                x, y = next(self.batches)
                self.step(x, y)
                t1 = perf()
                if record:
                    self.times.append((self.k, t1 - t0))
                    self.rounds.append(self.round)
                self.k += 1

    def periodic(self) -> dict:
        return {}

    def stats(self) -> dict:
        times = [t for _, t in self.times]
        med = statistics.median(times)
        return {"n": len(times), "median": med, "amortized": med, "min": min(times),
                "mean": statistics.fmean(times), "complete": True, "extras": {}}

    def close(self):
        pass


class TensorBoardPeer(Peer):
    def setup(self):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(self.work / "tb"))
        self.named = list(self.model.named_parameters())

    def step(self, x, y):
        loss = super().step(x, y)
        w, k = self.writer, self.k
        w.add_scalar("loss", loss.item(), k)
        for name, p in self.named:
            w.add_histogram(name, p, k)
            if p.grad is not None:
                w.add_histogram(f"{name}.grad", p.grad, k)
        return loss

    def close(self):
        self.writer.close()


class WandbPeer(Peer):
    session = None          # one offline wandb run for every model

    def setup(self):
        import wandb
        self.wandb = wandb
        if WandbPeer.session is None:
            os.environ.setdefault("WANDB_SILENT", "true")
            WandbPeer.session = wandb.init(mode="offline", dir=str(self.work), project="forgescope-bench",
                                       settings=wandb.Settings(console="off"))
        self.wandb.watch(self.model, log="all", log_freq=1)

    def step(self, x, y):
        loss = super().step(x, y)
        self.wandb.log({"loss": loss.item()})
        return loss

    def close(self):
        with contextlib.suppress(Exception):
            self.wandb.unwatch(self.model)


class CockpitPeer(Peer):
    def setup(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from backpack import extend
            from cockpit import Cockpit
            from cockpit.utils.configuration import configuration
        self.model = extend(self.model)
        self.loss_fn = extend(nn.CrossEntropyLoss())
        self.each_loss = nn.CrossEntropyLoss(reduction="none")
        self.cockpit = Cockpit(self.model.parameters(), quantities=configuration("economy"))

    def step(self, x, y):
        out = self.model(x)
        loss, losses = self.loss_fn(out, y), self.each_loss(out, y)
        self.opt.zero_grad()
        info = {"batch_size": x.shape[0], "individual_losses": losses, "loss": loss, "optimizer": self.opt}
        with self.cockpit(self.k, info=info):
            loss.backward(create_graph=self.cockpit.create_graph(self.k))
        self.opt.step()
        return loss


PEER_CLASSES = dict(zip(PEERS, (TensorBoardPeer, WandbPeer, CockpitPeer)))
PEER_PACKAGES = {"TensorBoard histograms": ("tensorboard",), "wandb.watch all": ("wandb",),
                 "Cockpit economy": ("cockpit", "backpack")}


def versions() -> dict[str, str]:
    from importlib import metadata
    out = {}
    for dist in ("torch", "tensorboard", "wandb", "cockpit-for-pytorch", "backpack-for-pytorch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def one_line(e: BaseException) -> str:
    """The first error of a chain (the one raised while handling it is often a follow-on), on one line."""
    while e.__context__ is not None:
        e = e.__context__
    text = f"{type(e).__name__}: {e}".strip().splitlines()[0]
    return text[:150]


# -- one model ------------------------------------------------------------------------------------------
def bench_model(key: str, args, work: Path) -> tuple[dict, dict]:
    label, build, _ = MODELS[key]
    batches = overhead.make_batches(MODELS[key][2])
    runners, failed = [], {}
    for name, cad in OURS.items():
        runners.append(overhead.Runner(name, cad, build, None, batches, work / key))
    for name in args.peers:
        try:
            runner = PEER_CLASSES[name](name, build, batches, work / f"{key}-{len(runners)}")
            runner.run(2, record=False)             # a peer that cannot handle the model fails here
            runners.append(runner)
        except Exception as e:                      # noqa: BLE001 -- reported in the table, not hidden
            failed[name] = f"fails on this model: {one_line(e)}"
            if args.verbose:
                traceback.print_exc()
    nparams = sum(p.numel() for p in runners[0].model.parameters())
    print(f"\n({key}) {label}: {nparams / 1e6:.2f}M parameters; {len(runners)} configurations, "
          f"{args.rounds} rounds x {args.block} steps (+1 warm-up round)", flush=True)
    t0 = time.perf_counter()
    errors = {}
    warm: dict[str, float] = {}
    try:
        for r in range(args.rounds + 1):
            # a fresh random order each round: a fixed rotation keeps the same neighbours, so one
            # configuration would always run right after the one that trashes the caches most
            order = random.Random(SEED + r).sample(runners, len(runners))
            for runner in order:
                if runner.name in errors:
                    continue
                # a configuration 10x slower than the plain loop in the warm-up runs one step per round:
                # its cost is plain from a few steps, and the run stays minutes long
                slow = r > 0 and warm.get(runner.name, 0) > 10 * warm.get("none", math.inf)
                t = time.perf_counter()
                runner.round = r
                try:
                    if r > 0 and not slow:
                        runner.run(1, record=False)     # the first step after a switch pays for the caches
                    runner.run(1 if slow else args.block, record=r > 0)
                except Exception as e:              # noqa: BLE001
                    errors[runner.name] = f"failed during the run: {one_line(e)}"
                if r == 0:
                    warm[runner.name] = (time.perf_counter() - t) / args.block
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                runner.close()
    print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)
    none = runners[0]
    results = {r.name: {**r.stats(), "ratio": overhead.paired(r, none)}
               for r in runners if r.name not in errors and r.times}
    return results, {**failed, **errors}


def added_ratio(results: dict, ours: str, peers: list[str]) -> tuple[float, str] | tuple[None, None]:
    """How many times more time the cheapest peer adds per step than `ours` does."""
    ran = [(results[p]["ratio"] - 1, p) for p in peers if p in results]
    if not ran or ours not in results:
        return None, None
    cheapest, name = min(ran)
    mine = results[ours]["ratio"] - 1
    return (math.inf if mine <= 0 else cheapest / mine), name


def print_model(key: str, results: dict, problems: dict) -> None:
    base = results["none"]
    print(f"  {'configuration':<24} {'steps':>5} {'median ms':>10} {'amort. ms':>10} {'min ms':>8} "
          f"{'x none':>8} {'+ms/step':>9}")
    for name in (*OURS, *PEERS):
        if name in results:
            s = results[name]
            print(f"  {name:<24} {s['n']:>5} {s['median'] * 1e3:>10.2f} {s['amortized'] * 1e3:>10.2f} "
                  f"{s['min'] * 1e3:>8.2f} {s['ratio']:>8.3f} "
                  f"{(s['amortized'] - base['amortized']) * 1e3:>+9.2f}")
        elif name in problems:
            print(f"  {name:<24} {problems[name]}")


def plot(all_results: dict, problems: dict, path: Path, title: str) -> str:
    plt = plotting.pyplot()
    if plt is None:
        return plotting.MISSING
    configs = [c for c in (*OURS, *PEERS) if c != "none"]
    colors = {"ForgeScope defaults": "#2a7de1", "ForgeScope every step": "#80b4f0",
              "TensorBoard histograms": "#f08c00", "wandb.watch all": "#c92a2a", "Cockpit economy": "#7048e8"}
    keys = list(all_results)
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    width = 0.8 / len(configs)
    for j, c in enumerate(configs):
        xs, ys = [], []
        for i, k in enumerate(keys):
            res = all_results[k]
            if c in res:
                xs.append(i + (j - (len(configs) - 1) / 2) * width)
                ys.append(res[c]["ratio"])
            elif c in problems.get(k, {}):
                ax.text(i + (j - (len(configs) - 1) / 2) * width, 1.02, "failed", rotation=90, fontsize=7,
                        ha="center", va="bottom", color=colors[c])
        bars = ax.bar(xs, ys, width, label=c, color=colors[c])
        for b, y in zip(bars, ys):
            ax.text(b.get_x() + b.get_width() / 2, y * 1.03, f"{y:.2f}", ha="center", va="bottom", fontsize=6.5,
                    rotation=90)
    ax.set_yscale("log")
    ax.axhline(1.0, color="#444", lw=0.8)
    ax.axhline(GOAL_EVERY, color="#80b4f0", lw=0.8, ls="--")
    ax.set_xticks(range(len(keys)), [f"({k}) {MODELS[k][0]}" for k in keys], fontsize=8)
    ax.set_ylabel("step time ÷ plain loop (log scale)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7.5, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.09), frameon=False)
    ymax = max((r[c]["ratio"] for r in all_results.values() for c in r), default=2)
    ax.set_ylim(0.8, ymax * 3)
    return plotting.save(fig, path)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=None, help="measured rounds (default 10)")
    p.add_argument("--block", type=int, default=None, help="steps per configuration per round (default 5)")
    p.add_argument("--models", default="a,b,c,d", help="comma-separated subset of a,b,c,d (default all)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to include (default all)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds x 2 steps")
    p.add_argument("--plot", default=str(HERE / "results" / "peers.png"), help="where the PNG goes")
    p.add_argument("--verbose", action="store_true", help="print a failing peer's traceback")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        p.error(f"--models: unknown {bad}; choose from {','.join(MODELS)}")
    args.peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    bad = [x for x in args.peers if x not in PEERS]
    if bad:
        p.error(f"--peers: unknown {bad}; choose from {', '.join(PEERS)}")
    if args.quick:
        args.rounds, args.block = args.rounds or 2, args.block or 2
    args.rounds, args.block = args.rounds or 10, args.block or 5
    return args


def main(argv=None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    vers = versions()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{machine}; " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    print(f"CPU, 1 thread, Adam, batch {BATCH}")
    # a peer that is not installed is reported once, not dropped
    missing = {}
    for name in list(args.peers):
        for mod in PEER_PACKAGES[name]:
            try:
                with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    __import__(mod)
            except Exception as e:                  # noqa: BLE001
                missing[name] = f"not available: {one_line(e)}"
                break
    args.peers = [x for x in args.peers if x not in missing]
    for name, why in missing.items():
        print(f"  {name}: {why}")
    work = Path(tempfile.mkdtemp(prefix="forgescope-peers-"))
    t0 = time.perf_counter()
    all_results, all_problems = {}, {}
    try:
        for key in args.models:
            res, problems = bench_model(key, args, work)
            problems = {**missing, **problems}
            all_results[key], all_problems[key] = res, problems
            print_model(key, res, problems)
    finally:
        if WandbPeer.session is not None:
            with contextlib.suppress(Exception):
                WandbPeer.session.finish(quiet=True)
        shutil.rmtree(work, ignore_errors=True)

    print("\nSummary: step time as a multiple of the plain loop, paired by round (ForgeScope amortized)")
    head = f"  {'model':<34}" + "".join(f"{c.replace('ForgeScope', 'FS'):>24}" for c in (*OURS, *PEERS) if c != "none")
    print(head)
    for key, res in all_results.items():
        cells = []
        for c in (*OURS, *PEERS):
            if c == "none":
                continue
            if c in res:
                cells.append(f"{res[c]['ratio']:>23.3f}x")
            else:
                why = all_problems[key].get(c, "")
                cells.append(f"{'failed' if 'fail' in why else 'n/a':>24}")
        print(f"  ({key}) {MODELS[key][0]:<30}" + "".join(cells))

    print(f"\nGoals: defaults <= {GOAL_DEFAULTS}x, every step <= {GOAL_EVERY}x, and each adds at least "
          f"{GOAL_LESS:.0f}x less time per step than the cheapest peer that ran")
    ok = True
    for key, res in all_results.items():
        d = res["ForgeScope defaults"]["ratio"]
        e = res["ForgeScope every step"]["ratio"]
        ld, peer = added_ratio(res, "ForgeScope defaults", args.peers)
        le, _ = added_ratio(res, "ForgeScope every step", args.peers)
        verdict = d <= GOAL_DEFAULTS and e <= GOAL_EVERY and (ld is None or (ld >= GOAL_LESS and le >= GOAL_LESS))
        ok &= verdict
        less = ("no peer ran" if ld is None else
                f"cheapest peer ({peer}) adds {ld:.0f}x the time of defaults, {le:.1f}x that of every step")
        print(f"  ({key}) defaults {d:.3f}x, every step {e:.3f}x; {less}: {'met' if verdict else 'MISSED'}")
    print(f"All goals met: {'yes' if ok else 'no'}")
    title = (f"Step time with each tool ÷ plain loop — CPU, 1 thread, Adam, batch {BATCH}\n{machine}; "
             + ", ".join(f"{k} {v}" for k, v in vers.items() if v != "not installed"))
    print(plot(all_results, all_problems, Path(args.plot), title))
    raw = Path(args.plot).with_suffix(".json")
    raw.write_text(json.dumps({"machine": machine, "versions": vers, "rounds": args.rounds, "block": args.block,
                               "results": all_results, "problems": all_problems}, indent=1, default=str))
    print(f"raw numbers: {plotting.shown(raw)}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
