"""What a Probe costs a CPU training loop (one thread, Adam, batch 64), in CPU time of the training thread.

    .venv/bin/python benchmarks/overhead.py                 # the budget check: defaults and every step
    .venv/bin/python benchmarks/overhead.py --quick         # smoke run (a few seconds per model; no verdict)
    .venv/bin/python benchmarks/overhead.py --profile       # time inside ForgeScope by piece, and why
    .venv/bin/python benchmarks/overhead.py --cprofile      # cProfile of the Probe's own Python, every step

Models: (a) MLP 784-2048-1536-256-10 (5.2M params), (b) small CNN on 3x32x32, (c) 60-layer MLP width 256,
(d) 12-layer transformer encoder on 32-token sequences (0.67M params).

How the budget is measured. Wall-clock step times on a shared machine move by more than the budget
between runs (another process takes the core, the clock changes), so the unit here is the CPU time of the
training thread (time.thread_time): time the thread was not running, because something else was, does not
count. With one torch thread the whole step (forward, backward, Adam, and every hook, statistic and
run-log write of the Probe) runs on that thread.

Three configurations per model, each with its own model and Adam built from the same seed (they train
identically): "none" (no Probe), "defaults" (a Probe at probes.DEFAULTS) and "every step" (every piece on
every step). After a warm-up past the Probe's first-step work (its detectors run on steps 0-2 and watch
for kept graphs on steps 0-7), the run goes in rounds. A round starts with one whole period of the
defaults' cadences (lcm of grad_norm 10, update_size 20, activations 25, memory 1, tree 100 = 100 steps),
so that every periodic piece runs in it exactly as often as in a long run: 100 steps of "none" and 100 of
"defaults", interleaved step by step, which of the two goes first drawn at random for each step (seeded).
The machine's drift (its clock, another tenant's cache and memory traffic: CPU time does not remove
those) then falls on both alike. Then the same for "every step", whose period is one step, 25 steps
against a "none" model of its own (so that each pair has taken the same number of steps, and has the same
weights). Per round, ratio = probed CPU / none's CPU over the same slots. The result per model and
configuration is the median of the per-round ratios with a bootstrap 95% interval (the rounds resampled
with replacement, 10,000 times, fixed seed; the 2.5th and 97.5th percentiles of the resampled medians).
A goal (defaults <= 1.03x, every step <= 1.25x) is met only when the interval's upper end is under it.
The number of rounds fits a wall-time budget (--minutes; at least 4 rounds a model, at most --rounds): the
models run costliest first, and one whose intervals all lie on one side of their goals after 8 rounds
stops there, leaving its time to the others.

Not in the rounds: the detectors' diagnostic steps come again every 1000 steps (diagnose=first(3,
then_every=1000)); their cost is measured once, on steps 1 and 2 of the metered run below, and shown
amortized over 1000 steps.

Time inside ForgeScope. After the rounds, each probed configuration is run again as a metered copy (its
model and Adam state loaded from the measured one): for that copy only, the benchmark process wraps every
entry into ForgeScope's code (Guard.call and Guard.wrap, which every hook, statistic and detector goes
through; the module-hook dispatcher; the run-log writer's methods; the tree refresh; the loss read) in a
thread-CPU timer, and books each entry's time, less what nested entries took, to its piece. The library
itself is not changed and the measured configurations run unwrapped. The timer's own cost per entry,
measured warm at start-up, is taken off; right after a training step has flushed the caches it costs a
microsecond or two more, so the figures run high by about that much per entry (the table gives the
entries per step). What runs outside any guarded function (the .backward() wrapper's listener loop, the
loader wrapper's two clock reads, torch's optimizer-hook trampolines, the forward wrapper one detector
puts on the model) is a few microseconds a step and not counted. The run log is written in the training
thread; the Probe's only background thread, the heartbeat (it touches a file every 5 s), is timed on its
own CPU clock and shown separately.

Loss capture is process-global (one wrapper around Tensor.backward for every open Probe): while one
configuration steps, only its own Probe listens, and the unprobed one runs the plain Tensor.backward.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import functools
import itertools
import math
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from probes import DEFAULTS, Probe  # noqa: E402
from probes import _loss_capture  # noqa: E402
from probes.guard import Guard, _ModuleHook  # noqa: E402
from probes.probe import CORE  # noqa: E402

BATCH = 64
SEED = 0
PIECES = ("grad_norm", "update_size", "activations", "memory", "tree")
PERIOD = math.lcm(*(n for p in PIECES if isinstance(n := DEFAULTS[p], int) and n > 0))   # 100
EVERY_BLOCK = 25            # steps per block of "every step" (its cadences' period is one step)
WARMUP = 12                 # unrecorded steps first: past the detectors' steps 0-2 and kept-graph watch 0-7
GOALS = {"defaults": 1.03, "every step": 1.25}
MIN_ROUNDS = 4              # whatever the time budget says
SETTLE_ROUNDS = 8           # from here on, a model whose every verdict is settled stops early
# relative CPU cost of one round per model (measured: none's step is ~50, 67, 46, 154 ms): how a time
# budget is shared between the models, so that each gets about as many rounds
WEIGHT = {"a": 1.0, "b": 1.35, "c": 0.95, "d": 3.1}


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
    "log only (all 0)": ALL_OFF,
    "grad_norm=1": {**ALL_OFF, "grad_norm": 1},
    "update_size=1": {**ALL_OFF, "update_size": 1},
    "activations=1": {**ALL_OFF, "activations": 1},
    "memory=1": {**ALL_OFF, "memory": 1},
    "tree=1": {**ALL_OFF, "tree": 1},
    "defaults": dict(DEFAULTS),
    "every step": EVERY_STEP,
}


def make_batches(in_shape, n=8):
    """n batches of inputs and class labels; in_shape None: token sequences of SEQ tokens."""
    g = torch.Generator().manual_seed(SEED + 1)
    if in_shape is None:
        return [(torch.randint(0, VOCAB, (BATCH, SEQ), generator=g), torch.randint(0, 10, (BATCH,), generator=g))
                for _ in range(n)]
    return [(torch.randn(BATCH, *in_shape, generator=g), torch.randint(0, 10, (BATCH,), generator=g))
            for _ in range(n)]


# -- one configuration ---------------------------------------------------------------------------------
class Runner:
    """A model, its Adam and (unless cadences is None) an open Probe; run(n) trains n steps and returns
    the training thread's CPU seconds and the wall seconds they took.

    from_runner: start from that runner's weights, Adam state and place in the batches (a metered copy).
    meter: build and run the Probe with every entry into ForgeScope timed (see Meter)."""

    def __init__(self, name: str, cadences: dict | None, build, batches, run_dir: Path,
                 from_runner: "Runner | None" = None, meter: "Meter | None" = None):
        self.name, self.cadences, self.meter = name, cadences, meter
        torch.manual_seed(SEED)
        self.model = build()
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        if from_runner is not None:
            self.model.load_state_dict(from_runner.model.state_dict())
            self.opt.load_state_dict(copy.deepcopy(from_runner.opt.state_dict()))
            shift = from_runner.k % len(batches)
            batches = batches[shift:] + batches[:shift]
        self.loss_fn = nn.CrossEntropyLoss()
        self.probe = None
        source = itertools.cycle(batches)
        if cadences is not None:
            run_name = "".join(c for c in name.replace(" ", "_") if c.isalnum() or c in "_-")
            run_name += "-metered" if meter else ""
            with metering(meter):
                self.probe = Probe(self.model, self.opt, run_dir=run_dir, run_name=run_name, **cadences)
                source = self.probe.wrap(source)
                if meter is not None:
                    meter.wrap_probe(self.probe)
        self.batches = iter(source)       # one iterator for the whole run: wrap()'s first-iter hook runs once
        self.k = 0                         # index of the next step (== probe.step_count)
        if meter is not None:
            meter.reset()

    def run(self, steps: int, per_step: list | None = None) -> tuple[float, float]:
        """Train `steps` steps: (thread CPU s, wall s). per_step: append each step's thread CPU seconds
        (and, metered, the time inside ForgeScope: (cpu, own))."""
        model, opt, loss_fn, batches = self.model, self.opt, self.loss_fn, self.batches
        cpu, wall, meter = time.thread_time, time.perf_counter, self.meter
        with only_listener(self.probe), metering(meter):
            w0, c0 = wall(), cpu()
            for _ in range(steps):
                if per_step is not None:
                    s0, o0 = cpu(), meter.total if meter else 0.0
                x, y = next(batches)
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if per_step is not None:
                    per_step.append((cpu() - s0, (meter.total - o0) if meter else 0.0))
                self.k += 1
            c1, w1 = cpu(), wall()
        return c1 - c0, w1 - w0

    def step(self) -> tuple[float, float]:
        """One step: (thread CPU s, wall s), the Probe's listener and meter set up outside the timing."""
        model, opt, loss_fn = self.model, self.opt, self.loss_fn
        with only_listener(self.probe), metering(self.meter):
            w0, c0 = time.perf_counter(), time.thread_time()
            x, y = next(self.batches)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            c1, w1 = time.thread_time(), time.perf_counter()
        self.k += 1
        return c1 - c0, w1 - w0

    def heartbeat_cpu(self) -> float | None:
        """CPU seconds used so far by the Probe's heartbeat thread (the only thread it starts)."""
        beat = getattr(self.probe, "_heartbeat", None)
        thread = getattr(beat, "_thread", None)
        if thread is None or not thread.is_alive():
            return None
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, AttributeError):
            return None

    def close(self) -> None:
        if self.probe is not None:
            err = self.probe.error
            with metering(self.meter, active=False):
                self.probe.close()
            if err:
                print(f"  !! Probe '{self.name}' stopped recording: {err}")
            if self.probe.step_count != self.k:
                print(f"  !! Probe '{self.name}' counted {self.probe.step_count} steps, the loop ran {self.k}")


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
        own = getattr(probe, "_loss_listener", None)
        _loss_capture._listeners[:] = [f for f in saved if f is own]
    try:
        yield
    finally:
        _loss_capture._listeners[:] = saved
        torch.Tensor.backward = backward


# -- time inside ForgeScope ----------------------------------------------------------------------------
def piece_of(name: str) -> str:
    """The table row for a guard name."""
    if name == CORE:
        return "step bookkeeping"
    if name in ("grad_norm", "update_size", "activations", "memory", "param_checksum", "loss capture",
                "data wait"):
        return name
    if name in ("tree", "tree checks"):
        return "tree"
    if name in ("weights changed", "run checks"):
        return "attach/close"
    return "detectors"              # the watchers' own names (dead-units, grad-flow, ...)


ROWS = ("grad_norm", "update_size", "activations", "memory", "run-log write", "tree", "loss capture",
        "data wait", "detectors", "step bookkeeping")


class Meter:
    """Thread-CPU time inside ForgeScope, by piece. timed(label, fn, ...) runs fn and books its time, less
    the time of the entries nested in it (and the timer's own cost for each of them), to label; `total`
    adds up the outermost entries only: the time the training thread spent inside ForgeScope."""

    def __init__(self):
        self.cost = 0.0             # what one nested timed() costs its enclosing entry, beyond fn itself
        self.reset()

    def reset(self) -> None:
        self.own: dict[str, float] = {}
        self.total = 0.0
        self.entries = 0
        self._stack: list[float] = []

    def timed(self, label: str, fn, *args, **kwargs):
        stack, clock = self._stack, time.thread_time
        stack.append(0.0)
        t0 = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            dt = clock() - t0
            inner = stack.pop()
            self.own[label] = self.own.get(label, 0.0) + dt - inner
            self.entries += 1
            if stack:
                stack[-1] += dt + self.cost
            else:
                self.total += dt

    def calibrate(self, n: int = 20000) -> float:
        """The cost of one nested entry as its parent sees it (median of 5 tries)."""
        def noop():
            return None

        def nested():
            for _ in range(n):
                self.timed("calibration", noop)

        def plain():
            for _ in range(n):
                noop()
        tries = []
        for _ in range(5):
            self.reset()
            t0 = time.thread_time()
            self.timed("outer", nested)
            t1 = time.thread_time()
            plain()
            t2 = time.thread_time()
            tries.append(((t1 - t0) - (t2 - t1)) / n)
        self.cost = max(statistics.median(tries), 0.0)
        self.reset()
        return self.cost

    def wrap_probe(self, probe) -> None:
        """Time the Probe's own entries that are not guarded calls: the run-log writer, the tree refresh
        and the loss read (instance attributes of this Probe only)."""
        writer = probe._writer
        if writer is not None:
            for method in ("write_step", "write_tree", "write_findings", "set_meta"):
                setattr(writer, method, functools.partial(self.timed, "run-log write", getattr(writer, method)))
        probe._refresh_tree = functools.partial(self.timed, "tree", probe._refresh_tree)
        probe._read_loss = functools.partial(self.timed, "loss capture", probe._read_loss)

    def per_step(self, steps: int) -> dict[str, float]:
        out = {row: 0.0 for row in ROWS}
        for label, t in self.own.items():
            out[label if label in out else "detectors"] = out.get(label, 0.0) + t / steps
        out["total"] = self.total / steps
        out["entries"] = self.entries / steps
        return out


_PLAIN = (Guard.call, Guard.wrap, _ModuleHook.__call__)


@contextlib.contextmanager
def metering(meter: Meter | None, active: bool = True):
    """While inside, every Guard.call, every function Guard.wrap makes (hooks, callbacks) and every module
    hook dispatch is timed by `meter`. Functions wrapped under it stay timed (they belong to the metered
    Probe, whose model runs only inside this context). No meter: nothing changes."""
    if meter is None or not active:
        saved = Guard.call, Guard.wrap, _ModuleHook.__call__
        Guard.call, Guard.wrap, _ModuleHook.__call__ = _PLAIN
        try:
            yield
        finally:
            Guard.call, Guard.wrap, _ModuleHook.__call__ = saved
        return
    plain_call, plain_wrap, plain_dispatch = _PLAIN
    timed = meter.timed

    def call(self, name, fn, *args, **kwargs):
        return timed(piece_of(name), plain_call, self, name, fn, *args, **kwargs)

    def wrap(self, name, fn):
        guarded = plain_wrap(self, name, fn)
        label = piece_of(name)

        @functools.wraps(guarded)
        def timed_guarded(*args, **kwargs):
            return timed(label, guarded, *args, **kwargs)
        timed_guarded.meter_label = label
        return timed_guarded

    def dispatch(self, module, *args, **kwargs):
        return timed(getattr(self.fn, "meter_label", "detectors"), plain_dispatch, self, module, *args, **kwargs)

    saved = Guard.call, Guard.wrap, _ModuleHook.__call__
    Guard.call, Guard.wrap, _ModuleHook.__call__ = call, wrap, dispatch
    try:
        yield
    finally:
        Guard.call, Guard.wrap, _ModuleHook.__call__ = saved


# -- the budget check ----------------------------------------------------------------------------------
def bootstrap_median(values: list[float], resamples: int, seed: int = SEED) -> tuple[float, float, float]:
    """(median, low, high): the median and the percentile 95% interval of the medians of `resamples`
    resamples with replacement."""
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(data, size=(resamples, data.size), replace=True), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(np.median(data)), float(low), float(high)


def bench_model(key: str, args, run_dir: Path, seconds: float) -> dict:
    """The rounds for one model (args.rounds of them, or fewer once `seconds` of wall time would pass,
    never under MIN_ROUNDS), then the metered copies. Returns everything the tables need."""
    label, build, in_shape = MODELS[key]
    batches = make_batches(in_shape)
    t_start = time.perf_counter()
    # "every step" gets a "none" of its own, so that each pair of models takes the same steps (the same
    # weights, the same denormal gradients in (c)) however long their blocks
    configs = {**MAIN_CONFIGS, "none (every step)": None}
    runners = {name: Runner(name, cad, build, batches, run_dir / key) for name, cad in configs.items()}
    nparams = sum(p.numel() for p in runners["none"].model.parameters())
    print(f"\n({key}) {label}: {nparams / 1e6:.2f}M parameters; a round: {args.block} steps each of none and "
          f"defaults, then {args.every_block} each of none and every step, interleaved step by step", flush=True)
    rounds: list[dict] = []
    beats: dict[str, float] = {}
    try:
        for runner in runners.values():
            runner.run(args.warmup)
        beat0 = {n: r.heartbeat_cpu() for n, r in runners.items()}
        w_rounds = time.perf_counter()
        rng = random.Random(SEED + ord(key))
        while len(rounds) < args.rounds:
            r0 = time.perf_counter()
            row = {"ratio": {}, "wall": {}}
            for name, base, steps in (("defaults", "none", args.block),
                                      ("every step", "none (every step)", args.every_block)):
                cpu = {base: 0.0, name: 0.0}
                walls = {base: [], name: []}
                for _ in range(steps):
                    pair = [base, name]
                    rng.shuffle(pair)       # which of the two goes first in this slot
                    for n in pair:
                        c, w = runners[n].step()
                        cpu[n] += c
                        walls[n].append(w)
                row["ratio"][name] = cpu[name] / cpu[base]
                row[name], row[base] = cpu[name] / steps, cpu[base] / steps
                row["wall"][name] = statistics.median(walls[name])
            none = row["none"]
            rounds.append(row)
            took = time.perf_counter() - r0
            elapsed = time.perf_counter() - t_start
            print(f"    round {len(rounds)}: none {none * 1e3:.1f} ms cpu/step; defaults "
                  f"{row['ratio']['defaults']:.3f}x, every step {row['ratio']['every step']:.3f}x ({took:.0f} s)",
                  flush=True)
            # stop when another round and the metered run (about half a round) would pass the model's share,
            # or when every interval already lies wholly on one side of its goal (the time left goes to the
            # models after this one)
            if len(rounds) >= MIN_ROUNDS and elapsed + 1.6 * took > seconds:
                break
            if len(rounds) >= SETTLE_ROUNDS and not args.quick and settled(rounds):
                print("    (settled: every interval is on one side of its goal)", flush=True)
                break
        w_rounds = time.perf_counter() - w_rounds
        for n, r in runners.items():
            b1 = r.heartbeat_cpu()
            if b1 is not None and beat0.get(n) is not None:
                beats[n] = (b1 - beat0[n]) / w_rounds          # CPU s per wall s
        metered = {}
        for name in ("defaults", "every step"):
            metered[name] = meter_copy(name, runners[name], build, batches, run_dir / key, args,
                                       args.block if name == "defaults" else args.every_block)
    finally:
        for runner in runners.values():
            runner.close()
    print(f"    ({time.perf_counter() - t_start:.0f} s)", flush=True)
    return {"label": label, "rounds": rounds, "beats": beats, "metered": metered}


def meter_copy(name: str, source: Runner, build, batches, run_dir: Path, args, steps: int) -> dict:
    """A copy of `source` (weights, Adam state, place in the data) with a fresh Probe whose every entry is
    timed: warm-up (steps 0-2 are the detectors' diagnostic steps), then one block."""
    meter = Meter()
    meter.cost = args.meter_cost
    runner = Runner(name, source.cadences, build, batches, run_dir, from_runner=source, meter=meter)
    try:
        warm: list[tuple[float, float]] = []
        runner.run(args.warmup, per_step=warm)
        meter.reset()
        cpu, _ = runner.run(steps)
        pieces = meter.per_step(steps)
    finally:
        runner.close()
    # the diagnostic steps 1 and 2 against the ordinary steps after the kept-graph watch (8, 9, 11)
    ordinary = [warm[i][1] for i in (8, 9, 11) if i < len(warm)]
    diagnose = None
    if len(warm) > 2 and ordinary:
        diagnose = statistics.fmean(w[1] for w in warm[1:3]) - statistics.median(ordinary)
    return {"pieces": pieces, "cpu": cpu / steps, "diagnose": diagnose}


def report(results: dict, args) -> None:
    resamples = args.resamples
    print(f"\n== Overhead: thread CPU time, probed / none, paired per round; median and bootstrap 95% interval "
          f"({resamples:,} resamples) ==")
    if args.quick:
        print("   (--quick: blocks shorter than a period and 2 rounds: a smoke run, no verdict)")
    head = (f"  {'model':<34} {'configuration':<11} {'rounds':>6} {'none ms':>8} {'median':>7} "
            f"{'95% interval':>16} {'goal':>6}  verdict")
    print(head)
    print("  " + "-" * (len(head) - 2))
    verdicts = []
    for key, res in results.items():
        for name, goal in GOALS.items():
            base = [row["none" if name == "defaults" else "none (every step)"] for row in res["rounds"]]
            ratios = [row["ratio"][name] for row in res["rounds"]]
            med, low, high = bootstrap_median(ratios, resamples)
            res.setdefault("ratio", {})[name] = (med, low, high)
            verdict = "n/a" if args.quick else ("PASS" if high < goal else "MISS")
            verdicts.append(verdict)
            print(f"  ({key}) {res['label']:<30} {name:<11} {len(ratios):>6} "
                  f"{statistics.median(base) * 1e3:>8.1f} {med:>7.3f} {f'[{low:.3f}, {high:.3f}]':>16} "
                  f"{goal:>5.2f}x  {verdict}")
    print("  none ms: the unprobed step's thread CPU time (median over rounds). PASS: the interval's upper end "
          "is under the goal.")
    if not args.quick:
        print(f"  Goals met: {verdicts.count('PASS')} of {len(verdicts)}")

    print("\n== Time inside ForgeScope per step, training thread CPU (metered copies; ms per step) ==")
    cols = [(key, name) for key in results for name in GOALS]
    print(f"  {'piece':<20}" + "".join(f"{f'({k}) {n}':>15}" for k, n in cols))
    for row in (*ROWS, "total"):
        label = "total inside" if row == "total" else row
        print(f"  {label:<20}" + "".join(f"{results[k]['metered'][n]['pieces'][row] * 1e3:>15.3f}" for k, n in cols))
    print(f"  {'% of none step':<20}" + "".join(
        f"{100 * results[k]['metered'][n]['pieces']['total'] / _base(results[k]):>14.1f}%" for k, n in cols))
    print(f"  {'measured overhead':<20}" + "".join(
        f"{(results[k]['ratio'][n][0] - 1) * _base(results[k]) * 1e3:>15.3f}" for k, n in cols))
    print(f"  {'entries per step':<20}" + "".join(
        f"{results[k]['metered'][n]['pieces']['entries']:>15.0f}" for k, n in cols))
    print(f"  {'heartbeat thread':<20}" + "".join(
        f"{_beat(results[k], n):>15}" for k, n in cols))
    print("  measured overhead: (median ratio - 1) x none's CPU per step; beyond the time inside ForgeScope it "
          "holds what our work costs the\n  user's own code (caches, allocator, garbage collection) and noise. "
          f"The timer's own cost ({args.meter_cost * 1e6:.2f} us per nested entry,\n  measured warm) is taken "
          "off; after a step has flushed the caches it costs 1-2 us more per entry, so 'total inside'\n  runs high "
          "by about that times 'entries'.\n"
          "  heartbeat thread: the Probe's one background thread, its own CPU clock during the rounds, in us "
          "per step at this step's wall time\n  (not in the training thread's time). The run-log writer works "
          "in the training thread: 'run-log write' above.")
    parts = []
    for key, res in results.items():
        d = res["metered"]["defaults"]["diagnose"]
        if d is not None:
            parts.append(f"({key}) +{d * 1e3:.1f} ms, {d / 1000 / _base(res) * 100:.3f}% of a step amortized")
    if parts:
        print("  Diagnostic steps (0-2, then every 1000; not in the rounds), time inside ForgeScope over an "
              "ordinary step: " + "; ".join(parts))


def _base(res: dict) -> float:
    return statistics.median(row["none"] for row in res["rounds"])


def _beat(res: dict, name: str) -> str:
    per_wall = res["beats"].get(name)
    if per_wall is None:
        return "-"
    wall_step = statistics.median(row["wall"][name] for row in res["rounds"])
    return f"{per_wall * wall_step * 1e6:.2f} us"


def settled(rounds: list[dict]) -> bool:
    """Whether each configuration's interval (2,000 resamples) lies wholly under or wholly over its goal."""
    for name, goal in GOALS.items():
        _, low, high = bootstrap_median([row["ratio"][name] for row in rounds], 2000)
        if low <= goal <= high:
            return False
    return True


def main_overhead(args, run_dir: Path) -> int:
    results = {}
    left = args.minutes * 60 - (time.perf_counter() - args.t0)
    # the costliest model first: if it settles early, the time it leaves goes to the others
    order = sorted(args.models, key=lambda k: -WEIGHT[k])
    for i, key in enumerate(order):
        share = left * WEIGHT[key] / sum(WEIGHT[k] for k in order[i:])
        t0 = time.perf_counter()
        results[key] = bench_model(key, args, run_dir, share)
        left -= time.perf_counter() - t0
    report({key: results[key] for key in args.models}, args)
    return 0


# -- where the time goes ---------------------------------------------------------------------------------
def main_profile(args, run_dir: Path) -> int:
    print("== 1. Time inside ForgeScope per step by piece (metered, training thread CPU), one configuration "
          "at a time ==")
    configs = ({n: PROFILE_CONFIGS[n] for n in ("defaults", "every step")} if args.no_toggles
               else PROFILE_CONFIGS)
    for key in args.models:
        label, build, in_shape = MODELS[key]
        batches = make_batches(in_shape)
        base = Runner("none", None, build, batches, run_dir / key)
        base.run(args.warmup)
        cpu, _ = base.run(args.block)
        none_step = cpu / args.block
        base.close()
        cols = {}
        for name, cad in configs.items():
            steps = args.block if name == "defaults" else args.every_block
            meter = Meter()
            meter.cost = args.meter_cost
            runner = Runner(name, cad, build, batches, run_dir / key, meter=meter)
            try:
                runner.run(args.warmup)
                meter.reset()
                runner.run(steps)
                cols[name] = (meter.per_step(steps), None)
            finally:
                runner.close()
        print(f"\n  ({key}) {label}: none {none_step * 1e3:.1f} ms CPU per step; {args.block}-step blocks "
              f"for defaults, {args.every_block} for the rest (ms per step)")
        print(f"  {'piece':<20}" + "".join(f"{n:>17}" for n in cols))
        for row in (*ROWS, "total"):
            print(f"  {'total inside' if row == 'total' else row:<20}"
                  + "".join(f"{p[row] * 1e3:>17.3f}" for p, _ in cols.values()))
        print(f"  {'% of none step':<20}"
              + "".join(f"{100 * p['total'] / none_step:>16.1f}%" for p, _ in cols.values()))
    print("\n  (the timer's own cost, measured warm, is taken off; 'tree' is the re-taking of the tree, the cheap "
          "check before it\n  is step bookkeeping; the step ratios are the default mode's job)")
    print("\n== 2. The costly operations alone, and cheaper equivalents (median of repeats, ms per due step) ==")
    for key in args.models:
        alternatives(key)
    return 0


def alternatives(key: str, repeat: int = 7) -> None:
    from probes.quantities.activations import Activations, _first_tensor
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
    def keep(module, args, output):     # the output the Probe's statistics read (an attention layer's is a tuple)
        t = _first_tensor(output)
        if t is not None and t.is_floating_point():
            outs.append(t.detach())
    handles = [m.register_forward_hook(keep) for _, m in named_modules(model)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    n_out = sum(o.numel() for o in outs)

    def t(fn):
        fn()
        ts = []
        for _ in range(repeat):
            t0 = time.thread_time()
            fn()
            ts.append(time.thread_time() - t0)
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

    def snapshot_current():        # two fresh full copies (snapshot, then deltas)
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
        ("update_size: 2 fresh full copies", t(snapshot_current)),
        ("update_size: 1 full copy, in-place delta", t(snapshot_in_place)),
        ("update_size: reused full buffer", t(snapshot_reused)),
        ("activations: forward + the Probe's hooks", t(forward_with_activations)),
        ("  std_mean, all outputs", t(lambda: [torch.std_mean(o) for o in outs])),
        ("  (f == 0).sum(), all outputs", t(lambda: [(o == 0).sum() for o in outs])),
        ("  isfinite(f).sum(), all outputs", t(lambda: [torch.isfinite(o).sum() for o in outs])),
        ("  mean + vector_norm, all outputs", t(lambda: [(o.mean(), torch.linalg.vector_norm(o)) for o in outs])),
        ("activations: sum + norm stats, all outputs", t(lambda: [fast_stats(o) for o in outs])),
        ("  same, zeros on a 65,536-element sample", t(lambda: [fast_stats(o, 65536) for o in outs])),
    ]
    print(f"\n  ({key}) {label}: {len(params)} parameter tensors, {len(outs)} module outputs, "
          f"{n_out / 1e6:.2f}M output elements per forward")
    for name, ms in rows:
        print(f"    {name:<44} {ms:>9.3f} ms")
    worst = max(abs(float(torch.std(o)) - fast_stats(o)[1]) / max(float(torch.std(o)), 1e-30)
                for o in outs if o.numel() > 1)
    worst_zero = max(abs(float((o == 0).float().mean()) - fast_stats(o, 65536)[2]) for o in outs)
    print(f"    (that std vs torch.std: max relative difference {worst:.1e}; sampled zero fraction: "
          f"max absolute error {worst_zero:.1e})")




def main_cprofile(args, run_dir: Path) -> int:
    """cProfile the Probe's Python side: time inside probes/ per step, every piece every step."""
    models = args.models
    steps = 10 if args.quick else 60
    for key in models:
        label, build, in_shape = MODELS[key]
        for name, cad in (("every step", EVERY_STEP), ("defaults", dict(DEFAULTS))):
            runner = Runner(name, cad, build, make_batches(in_shape), run_dir / f"cprof-{key}")
            runner.run(5)
            prof = cProfile.Profile()
            prof.enable()
            cpu, _ = runner.run(steps)
            prof.disable()
            runner.close()
            step_ms = 1e3 * cpu / steps
            stats = pstats.Stats(prof)
            rows = []
            for (file, line, fn), (cc, nc, tt, ct, callers) in stats.stats.items():
                if "/probes/" in file and not file.endswith("_loss_capture.py"):   # that one wraps backward
                    rows.append((ct, tt, nc, f"{Path(file).parent.name}/{Path(file).name}:{line}({fn})"))
            total_probe = sum(tt for _, tt, _, _ in rows)
            print(f"\n({key}) {label}, Probe {name}: {steps} steps under cProfile, {step_ms:.1f} ms CPU/step "
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
    p.add_argument("--rounds", type=int, default=None,
                   help=f"most rounds per model (default 12; at least {MIN_ROUNDS} are run whatever --minutes says)")
    p.add_argument("--minutes", type=float, default=13.5,
                   help="wall-time budget for the whole run, shared between the models by the cost of their "
                        "rounds (default 13.5)")
    p.add_argument("--block", type=int, default=None,
                   help=f"steps per block of none and defaults (default {PERIOD}: one period of the defaults)")
    p.add_argument("--every-block", type=int, default=None,
                   help=f"steps per block of every step (default {EVERY_BLOCK})")
    p.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples (default 10000)")
    p.add_argument("--models", default="a,b,c,d", help="comma-separated subset of a,b,c,d (default all)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 5-step blocks, no verdict")
    p.add_argument("--profile", action="store_true", help="time inside ForgeScope by piece for one piece at a "
                   "time, the defaults and every step (metered); the costly kernels and cheaper equivalents")
    p.add_argument("--cprofile", action="store_true", help="cProfile the Probe's Python code (the models of --models)")
    p.add_argument("--no-toggles", action="store_true", help="--profile with defaults and every step only")
    p.add_argument("--top", type=int, default=12, help="rows per cProfile table (default 12)")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        p.error(f"--models: unknown {bad}; choose from a,b,c,d")
    if args.quick:
        args.rounds = args.rounds or 2
        args.block, args.every_block = args.block or 5, args.every_block or 5
        args.warmup, args.resamples = 4, min(args.resamples, 1000)
    else:
        args.warmup = WARMUP
    args.rounds = args.rounds or 12
    args.block = args.block or PERIOD
    args.every_block = args.every_block or EVERY_BLOCK
    return args


def main(argv=None) -> int:
    args = parse(argv)
    args.t0 = time.perf_counter()
    torch.set_num_threads(1)
    warnings.simplefilter("always")
    args.meter_cost = Meter().calibrate()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}, Adam, CPU; "
          f"time: the training thread's CPU time")
    run_dir = Path(tempfile.mkdtemp(prefix="forgescope-bench-"))
    try:
        if args.cprofile:
            code = main_cprofile(args, run_dir)
        elif args.profile:
            code = main_profile(args, run_dir)
        else:
            code = main_overhead(args, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - args.t0:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
