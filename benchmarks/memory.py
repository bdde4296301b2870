"""Memory overhead of a Probe on a model of more than 100M parameters (CPU): extra peak process memory
as a share of the model and its optimizer state.

    .venv/bin/python benchmarks/memory.py            # table + benchmarks/results/memory.png
    .venv/bin/python benchmarks/memory.py --quick    # smoke run on a small model

Each configuration runs in a fresh Python process, one after the other, so each peak is its own:
  none           the plain training loop
  defaults       Probe(model, opt) at its defaults, run log on disk
  every step     every statistic every step (grad_norm, update_size, activations, memory, tree = 1)
The model: a GPT-style stack, token embedding 32,000 x 768, 12 pre-norm transformer encoder layers (12 heads,
feed-forward 3,072), an output layer back to 32,000 tokens: 134M parameters. Adam; batch 2 x 32 tokens;
12 steps by default, so every statistic of the defaults (grad_norm at steps 0 and 10, update_size and
activations at step 0, the first-steps detectors on steps 0-2) has run at least once.

Peak is the process's maximum resident set (getrusage ru_maxrss): anything the Probe holds even for a moment
(the update-size snapshot during optimizer.step(), say) counts. "Model + optimizer state" is the bytes of the
parameters plus the bytes of every tensor in the optimizer's state after the first step (Adam: two per
parameter). The goal: the Probe at its defaults adds at most 10% of that.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import plotting  # noqa: E402

ROOT = HERE.parent
GOAL = 0.10
CONFIGS = ("none", "defaults", "every step")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KiB on Linux


def child(config: str, steps: int, quick: bool, run_dir: str) -> dict:
    """One configuration, in this (fresh) process."""
    import torch
    from torch import nn

    sys.path.insert(0, str(ROOT))
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    vocab, d, layers, heads, ff = (2000, 64, 2, 4, 256) if quick else (32000, 768, 12, 12, 3072)

    class GPTLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True, norm_first=True)
            self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.out = nn.Linear(d, vocab)

        def forward(self, tokens):
            return self.out(self.norm(self.blocks(self.embed(tokens))))

    imported = rss_mib()
    model = GPTLike()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    data = [torch.randint(0, vocab, (2, 33), generator=g) for _ in range(4)]
    built = rss_mib()
    probe = None
    if config != "none":
        from probes import Probe
        every = dict(grad_norm=1, update_size=1, activations=1, memory=1, tree=1) if config == "every step" else {}
        probe = Probe(model, opt, run_dir=run_dir, run_name=config.replace(" ", "_"), **every)
    attached = rss_mib()
    loss_fn = nn.CrossEntropyLoss()
    after_step, t0 = [], time.perf_counter()
    source = probe.wrap(data * steps) if probe is not None else data * steps
    for k, seq in enumerate(source):
        if k == steps:
            break
        logits = model(seq[:, :-1])
        loss = loss_fn(logits.reshape(-1, vocab), seq[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        after_step.append(rss_mib())
    seconds = (time.perf_counter() - t0) / steps
    if probe is not None:
        err = probe.error
        probe.close()
        if err:
            raise SystemExit(f"the Probe stopped recording: {err}")
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    state = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                if torch.is_tensor(t))
    return {"config": config, "params": sum(p.numel() for p in model.parameters()),
            "param_mib": params / 2 ** 20, "state_mib": state / 2 ** 20, "imported_mib": imported,
            "built_mib": built, "attached_mib": attached, "after_step_mib": after_step, "peak_mib": peak_mib(),
            "s_per_step": seconds, "torch": torch.__version__}


def run_child(config: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="forgescope-mem-") as tmp:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", config, "--steps", str(args.steps),
               "--run-dir", tmp] + (["--quick"] if args.quick else [])
        env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"{config}: the child failed ({out.returncode}):\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def plot(results: dict, path: Path, title: str) -> str:
    plt = plotting.pyplot()
    if plt is None:
        return plotting.MISSING
    base = results["none"]
    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 4.6), dpi=110)
    parts = [("parameters", [base["param_mib"]] * len(names), "#4c6ef5"),
             ("Adam state", [base["state_mib"]] * len(names), "#91a7ff"),
             ("rest of the plain loop (torch, activations, gradients)",
              [base["peak_mib"] - base["param_mib"] - base["state_mib"]] * len(names), "#ced4da"),
             ("added by the Probe", [max(results[n]["peak_mib"] - base["peak_mib"], 0) for n in names], "#f03e3e")]
    bottom = [0.0] * len(names)
    for label, values, color in parts:
        ax.barh(names, values, left=bottom, color=color, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    for i, n in enumerate(names):
        extra = results[n]["peak_mib"] - base["peak_mib"]
        share = extra / (base["param_mib"] + base["state_mib"])
        ax.text(bottom[i] + 20, i, f"peak {results[n]['peak_mib']:,.0f} MiB" +
                ("" if n == "none" else f" (+{extra:,.0f} MiB, {share:.1%})"), va="center", fontsize=8)
    ax.set_xlim(0, max(bottom) * 1.45)
    ax.invert_yaxis()
    ax.set_xlabel("peak resident memory of the training process (MiB)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return plotting.save(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=12, help="training steps per configuration (default 12)")
    p.add_argument("--quick", action="store_true", help="smoke run on a small model")
    p.add_argument("--plot", default=str(HERE / "results" / "memory.png"), help="where the PNG goes")
    p.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps: at least 1")
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.quick, args.run_dir)))
        return 0
    t0 = time.perf_counter()
    results = {}
    for config in CONFIGS:
        print(f"  {config} ...", flush=True)
        results[config] = run_child(config, args)
    base = results["none"]
    model_state = base["param_mib"] + base["state_mib"]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {base['torch']}"
    print(f"\n{machine}; CPU, Adam, {args.steps} steps, batch 2 x 32 tokens")
    print(f"model: {base['params'] / 1e6:.1f}M parameters = {base['param_mib']:,.0f} MiB; Adam state "
          f"{base['state_mib']:,.0f} MiB; model + optimizer state {model_state:,.0f} MiB\n")
    print(f"  {'configuration':<12} {'s/step':>7} {'imports':>8} {'attached':>9} {'last step':>10} {'peak':>8} "
          f"{'extra peak':>11} {'% model+opt':>12}  (MiB)")
    for name, r in results.items():
        extra = r["peak_mib"] - base["peak_mib"]
        print(f"  {name:<12} {r['s_per_step']:>7.2f} {r['imported_mib']:>8.0f} {r['attached_mib']:>9.0f} "
              f"{r['after_step_mib'][-1]:>10.0f} {r['peak_mib']:>8.0f} {extra:>+11.0f} {extra / model_state:>11.1%}")
    d = results["defaults"]
    extra = d["peak_mib"] - base["peak_mib"]
    steady = d["after_step_mib"][-1] - base["after_step_mib"][-1]
    print(f"\nProbe at defaults: +{extra:,.0f} MiB at the peak ({extra / model_state:.1%} of model + optimizer "
          f"state; goal <= {GOAL:.0%}: {'met' if extra / model_state <= GOAL else 'MISSED'}); "
          f"+{steady:,.0f} MiB after the last step")
    title = f"Peak memory, {base['params'] / 1e6:.0f}M-parameter model, Adam, CPU — {machine}"
    print(plot(results, Path(args.plot), title))
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
