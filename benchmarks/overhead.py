"""Step-time overhead of a Probe on CPU (one thread, Adam, batch 64), interleaved so machine noise spreads evenly.

    .venv/bin/python benchmarks/overhead.py                 # the budget check: none / defaults / every step
    .venv/bin/python benchmarks/overhead.py --quick         # smoke run (a few seconds per model)
    .venv/bin/python benchmarks/overhead.py --profile       # what each Probe piece costs, and why
    .venv/bin/python benchmarks/overhead.py --cprofile      # cProfile of the Probe's own Python, every step

Models: (a) MLP 784-2048-1536-256-10 (5.2M params), (b) small CNN on 3x32x32, (c) 60-layer MLP width 256,
(d) 12-layer transformer encoder on 32-token sequences (0.67M params).
Every configuration of a model gets its own model + Adam, built from the same seed, and its own open Probe.
Each round runs a block of steps of every configuration in turn (in a new random order each round, after
one unrecorded step); the first round is warm-up. Only one Probe listens for .backward() at a time (loss
capture is process-global, so otherwise every open Probe would also capture the other configurations'
losses).

Four estimates per configuration, each as a ratio to "none":
  median     median step time. A periodic piece (grad_norm every 10, update_size every 20, activations
             every 25) is on too few steps to move a median, so this is the cost of an ordinary step.
  amortized  steps are grouped by which periodic pieces were due; the median of each group is weighted
             by how often that group occurs in the long run.
  min        fastest step; a cross-check that is insensitive to load from other processes.
  paired     amortized, from each step time divided by none's median step time in the same round: noise
             that lasts longer than a round (another tenant of the machine, CPU clocks) cancels. The goals
             (defaults <= 1.03x, every step <= 1.25x) are judged on this one.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import itertools
import math
import pstats
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from probes import DEFAULTS, Probe  # noqa: E402
from probes import _loss_capture  # noqa: E402

BATCH = 64
SEED = 0
PIECES = ("grad_norm", "update_size", "activations", "memory", "tree")


# -- models ------------------------------------------------------------------------------------------
def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 2048), nn.ReLU(), nn.Linear(2048, 1536), nn.ReLU(),
                         nn.Linear(1536, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn() -> nn.Module:
    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
    return nn.Sequential(*block(3, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2), *block(64, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def deep_mlp() -> nn.Module:
    layers = []
    for _ in range(60):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(256, 10))


SEQ, VOCAB = 32, 1000


class TokenEncoder(nn.Module):
    """12 pre-norm transformer encoder layers (d=64, 4 heads, feed-forward 256) over 32 tokens, mean-pooled."""

    def __init__(self, layers: int = 12, d: int = 64):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.pos = nn.Parameter(torch.zeros(SEQ, d))
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, 10)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens) + self.pos).mean(1))


MODELS = {      # key: (label, build, input shape; None for token sequences)
    "a": ("MLP 784-2048-1536-256-10", mlp, (784,)),
    "b": ("CNN 3x(conv+bn+relu) 32x32", cnn, (3, 32, 32)),
    "c": ("MLP 60 x Linear(256,256)", deep_mlp, (256,)),
    "d": ("Transformer encoder, 12 layers", TokenEncoder, None),
}

EVERY_STEP = {p: 1 for p in PIECES}
ALL_OFF = {p: 0 for p in PIECES}
MAIN_CONFIGS = {"none": None, "defaults": dict(DEFAULTS), "every step": EVERY_STEP}
PROFILE_CONFIGS = {
    "none": None,
    "log only (all 0)": ALL_OFF,
    "grad_norm=1": {**ALL_OFF, "grad_norm": 1},
    "update_size=1": {**ALL_OFF, "update_size": 1},
    "activations=1": {**ALL_OFF, "activations": 1},
    "memory=1": {**ALL_OFF, "memory": 1},
    "tree=1": {**ALL_OFF, "tree": 1},
    "defaults": dict(DEFAULTS),
}


# -- one configuration ---------------------------------------------------------------------------------
class Runner:
    def __init__(self, name: str, cadences: dict | None, build, in_shape, batches, run_dir: Path,
                 instrument: bool = False):
        self.name, self.cadences = name, cadences
        torch.manual_seed(SEED)
        self.model = build()
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss_fn = nn.CrossEntropyLoss()
        self.probe = None
        source = itertools.cycle(batches)
        if cadences is not None:
            self.probe = Probe(self.model, self.opt, run_dir=run_dir, run_name=name.replace(" ", "_")
                               .replace("=", "").replace("(", "").replace(")", ""), **cadences)
            source = self.probe.wrap(source)
        self.batches = iter(source)       # one iterator for the whole run: wrap()'s first-iter hook runs once
        self.k = 0                         # index of the next step (== probe.step_count)
        self.times: list[tuple[int, float]] = []
        self.rounds: list[int] = []       # the round each recorded step ran in
        self.round = 0
        self.faults: list[int] = []        # minor page faults per recorded step (instrumented runs only)
        self.clock = Clock() if instrument else None
        if instrument and self.probe is not None:
            self.clock.instrument(self.probe)

    def run(self, steps: int, record: bool) -> None:
        model, opt, loss_fn, batches = self.model, self.opt, self.loss_fn, self.batches
        perf = time.perf_counter
        clock = self.clock
        if clock is not None:
            clock.recording = record
        with only_listener(self.probe):
            for _ in range(steps):
                if clock is not None:
                    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = perf()
                x, y = next(batches)
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                t1 = perf()
                if record:
                    self.times.append((self.k, t1 - t0))
                    self.rounds.append(self.round)
                    if clock is not None:
                        self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
                self.k += 1

    def close(self) -> None:
        if self.clock is not None:
            self.clock.recording = False       # the run checks at close are not a step's cost
        if self.probe is not None:
            err = self.probe.error
            self.probe.close()
            if err:
                print(f"  !! Probe '{self.name}' stopped recording: {err}")
            if self.probe.step_count != self.k:
                print(f"  !! Probe '{self.name}' counted {self.probe.step_count} steps, the loop ran {self.k}")

    # which periodic pieces (cadence > 1) were due on step k
    def periodic(self) -> dict[str, int]:
        if self.cadences is None:
            return {}
        return {p: n for p, n in self.cadences.items() if isinstance(n, int) and n > 1}

    def stats(self) -> dict[str, float]:
        times = [t for _, t in self.times]
        periodic = self.periodic()
        median, amortized, complete, extras = amortize(self.times, periodic)
        extra = {}
        if self.clock is not None:
            extra["pieces"] = self.clock.per_step(len(times)) if self.probe is not None else {}
            extra["faults"] = statistics.fmean(self.faults)
        return {**extra, "n": len(times), "median": median, "mean": statistics.fmean(times),
                "min": min(times), "amortized": amortized, "complete": complete, "extras": extras}


def amortize(times: list[tuple[int, float]], periodic: dict[str, int]) -> tuple[float, float, bool, dict]:
    """(median, amortized, every kind of step sampled, extra per periodic piece) of (step index, value)
    pairs: steps are grouped by which periodic pieces were due, and each group's median is weighted by
    how often that group comes in the long run."""
    def klass(k):
        return frozenset(p for p, n in periodic.items() if k % n == 0)

    values = [t for _, t in times]
    groups: dict[frozenset, list[float]] = {}
    for k, t in times:
        groups.setdefault(klass(k), []).append(t)
    period = math.lcm(*periodic.values()) if periodic else 1
    freq: dict[frozenset, int] = {}
    for k in range(period, 2 * period):
        freq[klass(k)] = freq.get(klass(k), 0) + 1
    base = statistics.median(groups.get(frozenset(), values))
    amortized, complete = 0.0, True
    for c, n in freq.items():
        if c in groups:
            value = statistics.median(groups[c])
        else:   # never sampled (too few steps): add the single-piece extras we did see
            complete = False
            value = base + sum(statistics.median(groups[frozenset([p])]) - base
                               for p in c if frozenset([p]) in groups)
        amortized += value * n / period
    extras = {p: statistics.median(groups[frozenset([p])]) - base for p in periodic if frozenset([p]) in groups}
    return statistics.median(values), amortized, complete, extras


def paired(runner, none) -> float:
    """The amortized ratio to 'none' from each step time divided by none's median step time in the same
    round: noise that lasts longer than a round (another tenant, CPU clocks) cancels out."""
    ref: dict[int, list[float]] = {}
    for r, (_, t) in zip(none.rounds, none.times):
        ref.setdefault(r, []).append(t)
    ref_median = {r: statistics.median(v) for r, v in ref.items()}
    normalized = [(k, t / ref_median[r]) for r, (k, t) in zip(runner.rounds, runner.times) if r in ref_median]
    return amortize(normalized, runner.periodic())[1]


class Clock:
    """Time spent inside the Probe, by piece, measured in the real loop by wrapping the Probe's entry points
    and its quantities' methods on the instance (the library is not modified)."""

    PIECES = ("grad_norm", "update_size", "activations", "memory", "run-log write", "tree refresh", "loss read")

    def __init__(self):
        self.t: dict[str, float] = {}
        self.recording = False

    def _wrap(self, obj, attr: str, label: str) -> None:
        fn = getattr(obj, attr)
        perf = time.perf_counter

        def wrapped(*args, **kwargs):
            t0 = perf()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.recording:
                    self.t[label] = self.t.get(label, 0.0) + perf() - t0
        setattr(obj, attr, wrapped)

    def instrument(self, probe) -> None:
        self._wrap(probe, "_guarded", "total (optimizer hooks)")       # every hook-driven entry into the Probe
        for q in probe.quantities:
            for method in ("step_start", "before_update", "after_update", "step_end"):
                self._wrap(q, method, q.name)
            if q.name == "activations":                                 # the forward hooks themselves
                make_hook = q._hook
                q._hook = lambda i, make_hook=make_hook: self._timed_hook(make_hook(i))
        self._wrap(probe._writer, "write_step", "run-log write")
        self._wrap(probe, "_refresh_tree", "tree refresh")
        self._wrap(probe, "_read_loss", "loss read")

    def _timed_hook(self, hook):
        perf = time.perf_counter

        def timed(module, args, output):
            t0 = perf()
            try:
                return hook(module, args, output)
            finally:
                if self.recording:
                    self.t["activations (forward hooks)"] = (self.t.get("activations (forward hooks)", 0.0)
                                                             + perf() - t0)
        return timed

    def per_step(self, steps: int) -> dict[str, float]:
        """Seconds per step by piece; 'bookkeeping' is the hook time not inside any piece."""
        out = {p: self.t.get(p, 0.0) / steps for p in self.PIECES}
        out["activations"] += self.t.get("activations (forward hooks)", 0.0) / steps
        hooks = self.t.get("total (optimizer hooks)", 0.0) / steps
        inside = sum(v for p, v in out.items()) - self.t.get("activations (forward hooks)", 0.0) / steps
        out["bookkeeping"] = hooks - inside
        out["total"] = hooks + self.t.get("activations (forward hooks)", 0.0) / steps
        return out


@contextlib.contextmanager
def only_listener(probe):
    """Let only `probe` capture losses from .backward() (none at all, and the plain Tensor.backward, for
    the unprobed configuration). Loss capture is process-global; the other open Probes would otherwise
    also capture (and .item()) every other configuration's loss."""
    saved = list(_loss_capture._listeners)
    backward = torch.Tensor.backward
    if probe is None:
        if _loss_capture._original is not None:
            torch.Tensor.backward = _loss_capture._original
    else:
        _loss_capture._listeners[:] = [f for f in saved if getattr(f, "__self__", None) is probe]
    try:
        yield
    finally:
        _loss_capture._listeners[:] = saved
        torch.Tensor.backward = backward


def make_batches(in_shape, n=8):
    """n batches of inputs and class labels; in_shape None: token sequences of SEQ tokens."""
    g = torch.Generator().manual_seed(SEED + 1)
    if in_shape is None:
        return [(torch.randint(0, VOCAB, (BATCH, SEQ), generator=g), torch.randint(0, 10, (BATCH,), generator=g))
                for _ in range(n)]
    return [(torch.randn(BATCH, *in_shape, generator=g), torch.randint(0, 10, (BATCH,), generator=g))
            for _ in range(n)]


def bench_model(key: str, configs: dict, rounds: int, block: int, run_dir: Path,
                instrument: bool = False) -> dict[str, dict]:
    label, build, in_shape = MODELS[key]
    batches = make_batches(in_shape)
    runners = [Runner(name, cad, build, in_shape, batches, run_dir / key, instrument=instrument)
               for name, cad in configs.items()]
    nparams = sum(p.numel() for p in runners[0].model.parameters())
    print(f"\n({key}) {label}: {nparams / 1e6:.2f}M parameters, {len(runners)} configurations, "
          f"{rounds} rounds x {block} steps (+1 warm-up round)", flush=True)
    t_start = time.perf_counter()
    try:
        for r in range(rounds + 1):
            # a new random order each round (a rotation keeps each configuration's neighbour), and one
            # unrecorded step first: the first step after another configuration pays for the caches
            order = random.Random(SEED + r).sample(runners, len(runners))
            for runner in order:
                runner.round = r
                if r > 0:
                    runner.run(1, record=False)
                runner.run(block, record=r > 0)
    finally:
        for runner in runners:
            runner.close()
    print(f"    ({time.perf_counter() - t_start:.0f} s)")
    none = next(r for r in runners if r.name == "none")
    return {runner.name: {**runner.stats(), "cadences": runner.cadences, "paired": paired(runner, none)}
            for runner in runners}


def print_table(key: str, results: dict[str, dict]) -> None:
    ref = results["none"]
    head = (f"  {'configuration':<18} {'steps':>5} {'median ms':>10} {'amort. ms':>10} {'min ms':>8} "
            f"{'mean ms':>8} {'x median':>9} {'x amort.':>9} {'x min':>7} {'x paired':>9}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name, s in results.items():
        flag = "" if s["complete"] else " (some periodic steps not sampled)"
        print(f"  {name:<18} {s['n']:>5} {s['median'] * 1e3:>10.2f} {s['amortized'] * 1e3:>10.2f} "
              f"{s['min'] * 1e3:>8.2f} {s['mean'] * 1e3:>8.2f} {s['median'] / ref['median']:>9.3f} "
              f"{s['amortized'] / ref['amortized']:>9.3f} {s['min'] / ref['min']:>7.3f} {s['paired']:>9.3f}{flag}")
    for name, s in results.items():
        if s["extras"]:
            parts = ", ".join(f"{p} +{v * 1e3:.2f} ms on its steps (every {s['cadences'][p]})"
                              for p, v in s["extras"].items())
            print(f"    {name}: {parts}")


def main_overhead(args, run_dir: Path) -> int:
    all_results = {}
    for key in args.models:
        all_results[key] = res = bench_model(key, MAIN_CONFIGS, args.rounds, args.block, run_dir)
        print_table(key, res)
    print("\nSummary: ratio of step time to 'none'. 'x paired' (the verdict): amortized, each step divided by "
          "none's median in the same round.\nGoals: defaults <= 1.03x, every step <= 1.25x.")
    print(f"  {'model':<34} {'config':<11} {'x median':>9} {'x amort.':>9} {'x min':>7} {'x paired':>9}  goal")
    ok = True
    for key, res in all_results.items():
        ref = res["none"]
        for name, goal in (("defaults", 1.03), ("every step", 1.25)):
            s = res[name]
            verdict = "met" if s["paired"] <= goal else "MISSED"
            ok &= verdict == "met"
            print(f"  ({key}) {MODELS[key][0]:<30} {name:<11} {s['median'] / ref['median']:>9.3f} "
                  f"{s['amortized'] / ref['amortized']:>9.3f} {s['min'] / ref['min']:>7.3f} {s['paired']:>9.3f}  "
                  f"{verdict}")
    print(f"\nAll goals met: {'yes' if ok else 'no'}")
    return 0


def main_profile(args, run_dir: Path) -> int:
    # 1. time inside the Probe, piece by piece, in the real loop (instrumented), next to the measured overhead
    print("== 1. Where the time goes: time inside the Probe per step, by piece, measured in the real loop ==")
    for key in args.models:
        res = bench_model(key, MAIN_CONFIGS, args.rounds, args.block, run_dir, instrument=True)
        ref = res["none"]["amortized"]
        cols = [n for n in res if n != "none"]
        print(f"  {'piece (ms per step, amortized)':<34}" + "".join(f"{n:>14} {'% step':>7}" for n in cols))
        for piece in (*Clock.PIECES, "bookkeeping", "total"):
            label = "total inside the Probe" if piece == "total" else piece
            print(f"  {label:<34}" + "".join(f"{res[n]['pieces'][piece] * 1e3:>14.3f} "
                                         f"{100 * res[n]['pieces'][piece] / ref:>6.1f}%" for n in cols))
        over = {n: res[n]["amortized"] - ref for n in cols}
        print(f"  {'measured overhead vs none (amort.)':<34}" + "".join(f"{over[n] * 1e3:>14.3f} "
                                                                       f"{100 * over[n] / ref:>6.1f}%" for n in cols))
        print(f"  {'  of which outside the Probe':<34}" + "".join(
            f"{(over[n] - res[n]['pieces']['total']) * 1e3:>14.3f} "
            f"{100 * (over[n] - res[n]['pieces']['total']) / ref:>6.1f}%" for n in cols))
        print(f"  {'minor page faults per step':<34}" + "".join(f"{res[n]['faults']:>14.0f} {'':>7}" for n in cols)
              + f"   (none: {res['none']['faults']:.0f})")
        print(f"  (none: median {res['none']['median'] * 1e3:.2f} ms/step, amortized {ref * 1e3:.2f} ms/step; "
              f"'outside the Probe' = measured overhead - time inside: noise, cache and allocator effects)")

    # 2. toggles: one piece on at a time (noisy on a shared machine: the ms deltas carry +-2 ms)
    models = [m for m in args.models if m in ("a", "c")]
    if models and not args.no_toggles:
        print("\n== 2. Cross-check: one piece at a time (cadence 1), others 0; median step time ==")
    for key in (models if not args.no_toggles else []):
        res = bench_model(key, PROFILE_CONFIGS, args.rounds, max(1, args.block // 2), run_dir)
        ref = res["none"]["median"]
        log_only = res["log only (all 0)"]["median"]
        print(f"  {'configuration':<18} {'median ms':>10} {'min ms':>8} {'+ms vs none':>12} "
              f"{'+ms own':>8} {'default':>8} {'+ms/step at default':>20} {'% of step':>10}")
        for name, s in res.items():
            delta = s["median"] - ref
            own = s["median"] - log_only if name not in ("none", "log only (all 0)", "defaults") else delta
            piece = name.split("=")[0]
            if piece in DEFAULTS:
                n = DEFAULTS[piece]
                at_default = own / n if n else 0.0
                dflt = f"every {n}" if n else "off"
            elif name == "log only (all 0)":
                at_default, dflt = own, "always"
            elif name == "defaults":
                at_default, dflt = s["amortized"] - res["none"]["amortized"], "amort."
            else:
                at_default, dflt = 0.0, ""
            print(f"  {name:<18} {s['median'] * 1e3:>10.2f} {s['min'] * 1e3:>8.2f} {delta * 1e3:>+12.2f} "
                  f"{own * 1e3:>+8.2f} {dflt:>8} {at_default * 1e3:>+20.3f} {100 * at_default / ref:>9.2f}%")
        print("  (+ms own: the piece's cost on a step where it runs, over 'log only'; "
              "+ms/step at default: that cost divided by its default cadence)")

    # 3. the costly kernels and cheaper equivalents, timed alone
    print("\n== 3. The costly operations alone, and cheaper equivalents (median of repeats, ms per due step) ==")
    for key in args.models:
        alternatives(key)
    return 0


def alternatives(key: str, repeat: int = 7) -> None:
    from probes.quantities.activations import Activations
    from probes.quantities.base import StepContext, fused_norms
    from probes.schedules import every
    from probes.tree import named_modules
    label, build, in_shape = MODELS[key]
    torch.manual_seed(SEED)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = make_batches(in_shape, 1)[0]
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    params = list(model.parameters())
    grads = [p.grad for p in params]
    outs = []
    handles = [m.register_forward_hook(lambda m, a, o: outs.append(o.detach())) for _, m in named_modules(model)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    n_out = sum(o.numel() for o in outs)

    def t(fn):
        fn()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts) * 1e3

    def fast_stats(f, sample: int | None = None):
        # mean and std from two cheap reductions (sum, L2 norm); the non-finite count only when the norm
        # says there is one (a finite norm means every element is finite); zeros counted exactly, or on a
        # strided sample of about `sample` elements
        flat = f.reshape(-1)
        n = flat.numel()
        s, sq = float(flat.sum()), float(torch.linalg.vector_norm(flat))
        mean = s / n
        std = math.sqrt(max(sq * sq / n - mean * mean, 0.0) * n / max(n - 1, 1))
        part = flat if sample is None or n <= sample else flat[::n // sample]
        zero = float((part == 0).sum()) / part.numel()
        bad = 0.0 if math.isfinite(sq) else float(n - torch.isfinite(flat).sum()) / n
        return mean, std, zero, bad

    act = Activations(every(1))
    modules = list(named_modules(model))
    ctx = StepContext(step=0, names=[], params=params, modules=modules)

    def forward_with_activations():     # training-mode forward (the hooks skip no_grad passes)
        act.step_start(ctx)
        model(x)
        act.step_end(ctx)

    def forward_plain():
        model(x)

    def snapshot_current():        # UpdateSize today: two fresh full copies (snapshot, then deltas)
        with torch.no_grad():
            snap = torch._foreach_mul(params, 1)
            deltas = torch._foreach_sub(params, snap)
            fused_norms(deltas), fused_norms(params)

    def snapshot_in_place():       # one fresh copy, deltas computed into it
        with torch.no_grad():
            snap = torch._foreach_mul(params, 1)
            torch._foreach_sub_(snap, params)
            fused_norms(snap), fused_norms(params)

    keep = [p.detach().clone() for p in params]

    def snapshot_reused():         # a buffer kept between due steps (one parameter copy of memory, always)
        with torch.no_grad():
            torch._foreach_copy_(keep, params)
            torch._foreach_sub_(keep, params)
            fused_norms(keep), fused_norms(params)

    rows = [
        ("reference: forward", t(forward_plain)),
        ("reference: Adam step", t(opt.step)),
        ("grad_norm: fused_norms(grads)", t(lambda: fused_norms(grads))),
        ("update_size: 2 fresh copies (today)", t(snapshot_current)),
        ("update_size: 1 copy, in-place delta", t(snapshot_in_place)),
        ("update_size: reused buffer", t(snapshot_reused)),
        ("activations: forward + hooks (today)", t(forward_with_activations)),
        ("  std_mean, all outputs", t(lambda: [torch.std_mean(o) for o in outs])),
        ("  (f == 0).sum(), all outputs", t(lambda: [(o == 0).sum() for o in outs])),
        ("  isfinite(f).sum(), all outputs", t(lambda: [torch.isfinite(o).sum() for o in outs])),
        ("  mean + vector_norm, all outputs", t(lambda: [(o.mean(), torch.linalg.vector_norm(o)) for o in outs])),
        ("activations: proposed stats, all outputs", t(lambda: [fast_stats(o) for o in outs])),
        ("  same, zeros on a 65,536-element sample", t(lambda: [fast_stats(o, 65536) for o in outs])),
    ]
    print(f"\n  ({key}) {label}: {len(params)} parameter tensors, {len(outs)} module outputs, "
          f"{n_out / 1e6:.2f}M output elements per forward")
    for name, ms in rows:
        print(f"    {name:<44} {ms:>9.3f} ms")
    worst = max(abs(float(torch.std(o)) - fast_stats(o)[1]) / max(float(torch.std(o)), 1e-30)
                for o in outs if o.numel() > 1)
    worst_zero = max(abs(float((o == 0).float().mean()) - fast_stats(o, 65536)[2]) for o in outs)
    print(f"    (proposed std vs torch.std: max relative difference {worst:.1e}; sampled zero fraction: "
          f"max absolute error {worst_zero:.1e})")


def main_cprofile(args, run_dir: Path) -> int:
    """cProfile the Probe's Python side: time inside probes/ per step, every piece every step."""
    models = args.models
    steps = 10 if args.quick else 60
    for key in models:
        label, build, in_shape = MODELS[key]
        for name, cad in (("every step", EVERY_STEP), ("defaults", dict(DEFAULTS))):
            runner = Runner(name, cad, build, in_shape, make_batches(in_shape), run_dir / f"cprof-{key}")
            runner.run(5, record=False)
            prof = cProfile.Profile()
            prof.enable()
            runner.run(steps, record=True)
            prof.disable()
            runner.close()
            step_ms = 1e3 * sum(t for _, t in runner.times) / steps
            stats = pstats.Stats(prof)
            rows = []
            for (file, line, fn), (cc, nc, tt, ct, callers) in stats.stats.items():
                if "/probes/" in file and not file.endswith("_loss_capture.py"):   # that one wraps backward
                    rows.append((ct, tt, nc, f"{Path(file).parent.name}/{Path(file).name}:{line}({fn})"))
            total_probe = sum(tt for _, tt, _, _ in rows)
            print(f"\n({key}) {label}, Probe {name}: {steps} steps under cProfile, {step_ms:.1f} ms/step "
                  f"(profiled); own time inside probes/: {1e3 * total_probe / steps:.2f} ms/step")
            print(f"  {'cum ms/step':>11} {'own ms/step':>11} {'calls/step':>10}  function")
            for ct, tt, nc, where in sorted(rows, reverse=True)[:args.top]:
                print(f"  {1e3 * ct / steps:>11.3f} {1e3 * tt / steps:>11.3f} {nc / steps:>10.1f}  {where}")
            # the torch calls the Probe makes, by cumulative time (called from probes/)
            torch_rows = []
            for (file, line, fn), (cc, nc, tt, ct, callers) in stats.stats.items():
                if "/probes/" in file:
                    continue
                from_probe = {c: v for c, v in callers.items()
                              if "/probes/" in c[0] and not c[0].endswith("_loss_capture.py")}
                if from_probe:
                    t = sum(v[3] for v in from_probe.values())
                    n = sum(v[1] for v in from_probe.values())
                    torch_rows.append((t, n, f"{fn} ({Path(file).name}:{line})" if line else fn))
            print("  called from probes/ (cumulative ms/step; the user's backward, run through the loss-capture "
                  "wrapper, left out):")
            for t, n, where in sorted(torch_rows, reverse=True)[:args.top]:
                print(f"  {1e3 * t / steps:>11.3f} {'':>11} {n / steps:>10.1f}  {where}")
    return 0


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=None, help="measured rounds (default 30; 8 with --profile)")
    p.add_argument("--block", type=int, default=None, help="steps per configuration per round (default 5)")
    p.add_argument("--models", default="a,b,c,d", help="comma-separated subset of a,b,c,d (default all)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds x 5 steps")
    p.add_argument("--profile", action="store_true", help="what each Probe piece costs: instrumented "
                   "loop (all models), one-piece-at-a-time runs (a, c), costly kernels and cheaper equivalents")
    p.add_argument("--cprofile", action="store_true", help="cProfile the Probe's Python code (the models of --models)")
    p.add_argument("--no-toggles", action="store_true", help="--profile without the one-piece-at-a-time runs")
    p.add_argument("--top", type=int, default=12, help="rows per cProfile table (default 12)")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        p.error(f"--models: unknown {bad}; choose from a,b,c,d")
    if args.quick:
        args.rounds, args.block = args.rounds or 2, args.block or 5
    args.rounds = args.rounds or (8 if args.profile else 30)
    args.block = args.block or (10 if args.profile else 5)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("always")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}, Adam, CPU")
    run_dir = Path(tempfile.mkdtemp(prefix="forgescope-bench-"))
    t0 = time.perf_counter()
    try:
        if args.cprofile:
            code = main_cprofile(args, run_dir)
        elif args.profile:
            code = main_profile(args, run_dir)
        else:
            code = main_overhead(args, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
