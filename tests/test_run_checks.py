"""Run checks (probes/detectors/, one module per code) on run data built here: small frames
and trees, a real run log, and the command line once for the info-level suspicious-initial-loss."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probes.detectors import RUN_CHECKS, RunData, check_run, gradient_depth
from probes.detectors import thresholds as T
from probes.detectors._common import module_location
from probes.detectors.dataloader_stall import dataloader_stall
from probes.detectors.exploding_gradients import gradient_growth
from probes.detectors.memory_growth import memory_growth
from probes.stats import theil_sen
from probes.detectors.mixed_devices import mixed_devices
from probes.detectors.nonfinite_values import nonfinite_values
from probes.detectors.param_not_in_optimizer import param_not_in_optimizer
from probes.detectors.suspicious_initial_loss import suspicious_initial_loss
from probes.detectors.update_ratio import update_ratio
from probes.detectors.weights_not_updating import weights_not_updating
from probes.runlog import DB_NAME, RunReader, RunWriter

ROOT = Path(__file__).resolve().parent.parent
LOC = "model.py:3"


# -- building run data --------------------------------------------------------------------------------
def tensor(name, shape=(4, 4), optimizer=0, requires_grad=True, device="cpu", kind="parameter", duplicate=False):
    return {"name": name, "module": name.rpartition(".")[0], "kind": kind, "shape": list(shape),
            "dtype": "float32", "device": device, "requires_grad": requires_grad,
            "numel": int(np.prod(shape)), "lazy": False, "optimizer": optimizer,
            "param_group": None if optimizer is None else 0, "shared_with": [], "duplicate": duplicate}


def make_tree(tensors, modules=None, optimizer_only=(), n_optimizers=1):
    if modules is None:
        paths = [""] + sorted({t["module"] for t in tensors if t["module"]},
                              key=lambda p: [t["module"] for t in tensors].index(p))
        modules = [{"path": p, "class": "Net" if not p else "Linear", "location": LOC if not p else None}
                   for p in paths]
    return {"modules": modules, "tensors": list(tensors), "unregistered": [], "uninitialised": [],
            "optimizer_only": list(optimizer_only), "n_optimizers": n_optimizers}


def frame(columns: dict, steps=None):
    """{name: [value per step]} -> step x name frame, as RunReader.series returns."""
    n = len(next(iter(columns.values())))
    index = pd.Index(steps if steps is not None else range(n), name="step")
    return pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in columns.items()}, index=index)


def run(tree=None, scalars=None, meta=None, **series):
    empty = pd.DataFrame(index=pd.Index([], name="step", dtype="int64"))
    return RunData(meta=meta or {"optimizers": [{"class": "Adam", "param_groups": [{"lr": 1e-3}]}]},
                   tree=tree, scalars=scalars if scalars is not None else empty,
                   series=lambda name: series.get(name, empty))


def codes(findings):
    return [f.code for f in findings]


# -- helpers ------------------------------------------------------------------------------------------
def test_module_location_is_the_nearest_user_class():
    tree = make_tree([tensor("block.fc.weight")],
                     modules=[{"path": "", "location": "m.py:1"}, {"path": "block", "location": "m.py:9"},
                              {"path": "block.fc", "location": None}])
    assert module_location(tree, "block.fc") == "m.py:9"
    assert module_location(tree, "") == "m.py:1"
    assert module_location(None, "x") is None


def test_theil_sen_ignores_a_single_jump():
    steps = np.arange(8, dtype=float)
    assert theil_sen(steps, 3 * steps) == pytest.approx(3)
    assert theil_sen(steps, np.where(steps == 5, 1e9, 0.0)) == 0


# -- param-not-in-optimizer ---------------------------------------------------------------------------
def test_param_with_gradient_but_no_optimizer():
    tree = make_tree([tensor("body.weight"), tensor("head.weight", optimizer=None),
                      tensor("head.bias", shape=(4,), optimizer=None)])
    grads = frame({"body.weight": [1, 1, 1], "head.weight": [0.5, 0.4, 0.3], "head.bias": [0.2, 0.2, 0.1]})
    (f,) = param_not_in_optimizer(run(tree, grad_norm=grads))
    assert (f.code, f.severity, f.module, f.location) == ("param-not-in-optimizer", "error", "head", LOC)
    assert [p["name"] for p in f.evidence["parameters"]] == ["head.weight", "head.bias"]
    assert f.evidence["parameters"][0]["grad_norm"] == 0.3 and f.evidence["parameters"][0]["step"] == 2
    assert "head.weight" in f.title and f.fix


def test_optimizer_findings_point_at_the_line_that_builds_the_optimizer():
    """The check worker records where make_optimizer() builds each optimizer (meta optimizer_locations)."""
    tree = make_tree([tensor("body.weight"), tensor("head.weight", optimizer=None)],
                     optimizer_only=[{"optimizer": 0, "param_group": 0, "shape": [4, 4]}])
    grads = frame({"body.weight": [1, 1, 1], "head.weight": [0.5, 0.4, 0.3]})
    meta = {"optimizers": [{"class": "AdamW", "param_groups": [{"lr": 1e-3}]}],
            "optimizer_locations": ["model.py:24"]}
    missing, foreign = param_not_in_optimizer(run(tree, meta=meta, grad_norm=grads))
    assert (missing.module, missing.location) == ("head", "model.py:24")
    assert (foreign.module, foreign.location) == ("", "model.py:24")
    # two optimizers built on different lines: no single line to name, the module's class instead
    meta["optimizer_locations"] = ["model.py:24", "model.py:25"]
    missing, _ = param_not_in_optimizer(run(tree, meta=meta, grad_norm=grads))
    assert missing.location == LOC
    stuck = not_updating_run([0.0] * T.NOT_UPDATING_MIN_STEPS)
    stuck.meta["optimizer_locations"] = ["model.py:33"]
    (f,) = weights_not_updating(stuck)
    assert (f.module, f.location) == ("net.0", "model.py:33")


def test_optimizer_tensors_not_in_the_model():
    tree = make_tree([tensor("fc.weight")], optimizer_only=[{"optimizer": 0, "param_group": 0, "shape": [4, 4]}])
    (f,) = param_not_in_optimizer(run(tree, grad_norm=frame({"fc.weight": [1.0]})))
    assert f.module == "" and f.location == LOC and f.evidence["count"] == 1
    assert f.evidence["tensors"] == [{"optimizer": 0, "param_group": 0, "shape": [4, 4]}]


@pytest.mark.parametrize("case", ["frozen", "no_gradient", "no_optimizer_at_all", "tied"])
def test_param_not_in_optimizer_stays_quiet(case):
    if case == "frozen":     # requires_grad False: a frozen backbone needs no optimizer
        tree = make_tree([tensor("backbone.weight", optimizer=None, requires_grad=False), tensor("head.weight")])
        grads = frame({"backbone.weight": [math.nan] * 3, "head.weight": [1, 1, 1]})
    elif case == "no_gradient":   # trainable but unused in forward: no gradient ever, not this check's
        tree = make_tree([tensor("unused.weight", optimizer=None), tensor("head.weight")])
        grads = frame({"unused.weight": [math.nan] * 3, "head.weight": [1, 1, 1]})
    elif case == "no_optimizer_at_all":   # manual probe.step() without an optimizer
        tree = make_tree([tensor("fc.weight", optimizer=None)], n_optimizers=0)
        grads = frame({"fc.weight": [1, 1, 1]})
    else:                    # a tied weight's second name is a duplicate entry
        tree = make_tree([tensor("embed.weight"), tensor("head.weight", optimizer=0, duplicate=True)])
        grads = frame({"embed.weight": [1, 1, 1]})
    assert param_not_in_optimizer(run(tree, grad_norm=grads)) == []


# -- weights-not-updating -----------------------------------------------------------------------------
def not_updating_run(updates, lr=0.0):
    tree = make_tree([tensor("net.0.weight"), tensor("net.1.weight")])
    n = len(updates)
    grads = frame({"net.0.weight": [1.0] * n, "net.1.weight": [1.0] * n})
    ups = frame({"net.0.weight": updates, "net.1.weight": [0.1] * n})
    meta = {"optimizers": [{"class": "SGD", "param_groups": [{"lr": lr}]}]}
    return run(tree, meta=meta, grad_norm=grads, update_norm=ups)


def test_weights_not_updating_names_parameter_module_and_lr():
    (f,) = weights_not_updating(not_updating_run([0.0] * T.NOT_UPDATING_MIN_STEPS))
    assert (f.code, f.severity, f.module, f.location) == ("weights-not-updating", "error", "net.0", LOC)
    p = f.evidence["parameters"][0]
    assert p["name"] == "net.0.weight" and p["steps"] == list(range(T.NOT_UPDATING_MIN_STEPS))
    assert p["grad_norm"] == 1.0 and p["update_norm"] == 0.0 and f.evidence["lr"] == {"0/0": 0.0}
    assert "learning rate the optimizer started with is 0" in f.detail


def test_weights_not_updating_edges():
    assert weights_not_updating(not_updating_run([0.0] * (T.NOT_UPDATING_MIN_STEPS - 1))) == []   # too few
    assert weights_not_updating(not_updating_run([0.0, 0.0, 1e-9, 0.0], lr=0.1)) == []   # it moved once
    # no gradient (NaN) or a zero gradient: nothing to update with, not this check's business
    tree = make_tree([tensor("fc.weight")])
    zero = run(tree, grad_norm=frame({"fc.weight": [0.0] * 5}), update_norm=frame({"fc.weight": [0.0] * 5}))
    assert weights_not_updating(zero) == []


def test_weights_that_stop_changing_midway_are_reported_from_that_step():
    """A schedule that reaches lr 0 and stays there (an integer-division annealing): moved, then not."""
    (f,) = weights_not_updating(not_updating_run([0.01] * 10 + [0.0] * 5, lr=0.1))
    assert f.title.startswith("net.0.weight stopped changing at step 10")
    assert f.evidence["parameters"][0]["since"] == 10 and f.evidence["parameters"][0]["moved_before"]
    # a schedule that touches 0 on its last steps only is not stuck
    assert weights_not_updating(not_updating_run([0.01] * 18 + [0.0] * 2, lr=0.1)) == []


# -- nonfinite-values ---------------------------------------------------------------------------------
def test_nonfinite_activation_blames_the_first_leaf_module_at_the_first_bad_step():
    tree = make_tree([tensor("enc.weight"), tensor("dec.weight")],
                     modules=[{"path": "", "location": LOC}, {"path": "enc", "location": None},
                              {"path": "act", "location": "model.py:7"}, {"path": "dec", "location": None}])
    acts = frame({"": [0, 0, 1.0], "enc": [0, 0, 0], "act": [0, 0, 0.5], "dec": [0, 0, 1.0]})
    loss = frame({"loss": [2.0, 1.5, math.nan]})
    grads = frame({"enc.weight": [0, 0, 16], "dec.weight": [0, 0, 16]})
    (f,) = nonfinite_values(run(tree, scalars=loss, act_nonfinite_frac=acts, grad_nonfinite=grads))
    assert (f.code, f.severity, f.module, f.location) == ("nonfinite-values", "error", "act", "model.py:7")
    assert f.evidence["step"] == 2 and f.evidence["where"] == "activations"
    assert {"module": "act", "nonfinite_fraction": 0.5} in f.evidence["modules"]
    assert f.evidence["also_nonfinite"] == ["gradients", "loss"]


def test_nonfinite_activation_alone_is_not_reported():
    tree = make_tree([tensor("scores.weight")])      # e.g. attention scores masked with -inf on purpose
    acts = frame({"": [0, 0], "scores": [0.25, 0.25]})
    assert nonfinite_values(run(tree, scalars=frame({"loss": [2.0, 1.9]}), act_nonfinite_frac=acts,
                                grad_nonfinite=frame({"scores.weight": [0, 0]}))) == []


def test_nonfinite_gradient_names_the_parameter_and_its_module():
    tree = make_tree([tensor("a.weight"), tensor("b.weight")])
    grads = frame({"a.weight": [0, 0, 0, 0], "b.weight": [0, 0, 3, 16]})
    (f,) = nonfinite_values(run(tree, grad_nonfinite=grads, weight_nonfinite=frame({"a.weight": [0, 0, 0, 16],
                                                                                      "b.weight": [0, 0, 0, 16]})))
    assert f.module == "b" and f.evidence["step"] == 2 and f.evidence["where"] == "gradients"
    assert f.evidence["parameters"] == [{"name": "b.weight", "nonfinite_values": 3}]
    assert f.evidence["also_nonfinite"] == ["weights"]


def test_nonfinite_loss_alone_and_a_missing_loss_is_not_nan():
    inf_loss = frame({"loss": [1.0, math.inf]})
    (f,) = nonfinite_values(run(make_tree([]), scalars=inf_loss))
    assert f.module is None and f.location is None and f.evidence["step"] == 1 and f.evidence["where"] == "loss"
    # no loss recorded at all (NaN everywhere): nothing to say
    assert nonfinite_values(run(make_tree([]), scalars=frame({"loss": [math.nan] * 3}))) == []
    assert nonfinite_values(run(make_tree([tensor("a.weight")]), grad_nonfinite=frame({"a.weight": [0, 0]}))) == []


# -- mixed-devices ------------------------------------------------------------------------------------
def test_mixed_devices_names_the_stray_tensors():
    tree = make_tree([tensor("bn.weight", shape=(4,)), tensor("bn.bias", shape=(4,)),
                      tensor("bn.running_mean", shape=(4,), kind="buffer", device="cuda:0", optimizer=None),
                      tensor("fc.weight", device="cuda:0")])
    (f,) = mixed_devices(run(tree))
    assert (f.code, f.severity, f.module, f.location) == ("mixed-devices", "error", "bn", LOC)
    assert f.evidence == {"devices": {"cpu": ["bn.weight", "bn.bias"], "cuda:0": ["bn.running_mean"]},
                          "home": "cpu"}
    assert "bn.running_mean" in f.detail


def test_one_device_per_module_is_clean():
    tree = make_tree([tensor("a.weight", device="cuda:0"), tensor("b.weight", device="cpu")])
    assert mixed_devices(run(tree)) == []       # different modules on different devices: pipelining


def stray(name, device="meta", home="cpu", location="model.py:12"):
    module, _, attribute = name.rpartition(".")
    return {"name": name, "module": module, "attribute": attribute, "shape": [32, 64], "dtype": "float32",
            "device": device, "home": home, "location": location}


def test_mixed_devices_names_a_plain_tensor_attribute_and_its_line():
    tree = make_tree([tensor("embed.weight"), tensor("head.weight")])
    tree["stray_tensors"] = [stray("positions")]
    (f,) = mixed_devices(run(tree))
    assert (f.code, f.severity, f.module, f.location) == ("mixed-devices", "error", "", "model.py:12")
    assert f.title == "The model has tensors on cpu, meta"
    assert f.evidence["devices"] == {"meta": ["positions"]} and f.evidence["home"] == "cpu"
    assert f.evidence["attributes"] == [{"name": "positions", "device": "meta", "shape": [32, 64],
                                         "dtype": "float32", "location": "model.py:12"}]
    assert "positions is on meta while the rest of the model is on cpu" in f.detail
    assert "plain tensor attribute" in f.detail and "register_buffer('positions'" in f.fix


def test_mixed_devices_joins_attributes_and_registered_tensors_of_one_module():
    tree = make_tree([tensor("attn.weight", device="cuda:0"), tensor("attn.bias", device="cpu"),
                      tensor("attn.scale", device="cuda:0")])
    tree["stray_tensors"] = [stray("attn.mask", device="cpu", home="cuda:0", location=None)]
    (f,) = mixed_devices(run(tree))
    assert f.module == "attn" and f.location == LOC         # no line for the attribute: the module's class
    assert f.evidence["devices"] == {"cpu": ["attn.bias", "attn.mask"], "cuda:0": ["attn.weight", "attn.scale"]}
    assert f.evidence["home"] == "cuda:0" and "attn.bias, attn.mask are on cpu" in f.detail


# -- vanishing-gradients / exploding-gradients --------------------------------------------------------
def depth_run(per_block, steps=T.GRAD_MIN_STEPS, ratios=None, extra=None):
    """A numbered stack of 4x4 weights (blocks 0..n-1 of `layers`), each with the gradient norm given, plus
    whatever single tensors `extra` adds inside block 0 ({name: norm})."""
    names = [f"layers.{i}.fc.weight" for i in range(len(per_block))]
    extra = extra or {}
    tensors = [tensor(n) for n in names] + [tensor(n) for n in extra]
    grads = {n: [v] * steps for n, v in zip(names, per_block)} | {n: [v] * steps for n, v in extra.items()}
    series = {"grad_norm": frame(grads)}
    if ratios is not None:
        series["update_ratio"] = frame({n: [v] * steps for n, v in zip(names, ratios)})
    return run(make_tree(tensors), **series)


def test_vanishing_gradients_need_a_steady_fall_across_blocks():
    sigmoid_stack = [1 / 7.6 ** 3, 1 / 7.6 ** 2, 1 / 7.6, 1.0]       # ~7.6x lost per layer (sigmoid MLP)
    (f,) = gradient_depth(depth_run(sigmoid_stack))
    assert (f.code, f.severity, f.module, f.location) == ("vanishing-gradients", "warning", "layers.0", LOC)
    assert [b["module"] for b in f.evidence["layers"]] == ["layers.0", "layers.1"]     # a tenth or less
    assert f.evidence["reference"]["module"] == "layers.3"
    assert [b["block"] for b in f.evidence["blocks"]] == [f"layers.{i}" for i in range(4)]
    assert f.evidence["span"] == pytest.approx(7.6 ** 3)
    # a fall of 10x over the stack is healthy; so is one small block among flat ones (no trend)
    assert gradient_depth(depth_run([0.1, 0.3, 0.6, 1.0])) == []
    assert gradient_depth(depth_run([1e-4, 1.0, 0.9, 1.1, 1.0])) == []
    assert gradient_depth(depth_run(sigmoid_stack, steps=T.GRAD_MIN_STEPS - 1)) == []
    assert gradient_depth(depth_run(sigmoid_stack[2:])) == []        # two blocks: no trend to see


def test_one_tiny_tensor_in_a_block_is_not_a_vanishing_block():
    """A query projection or a layer scale at 1e-6 inside a block: the block's RMS is its other weights'."""
    found = gradient_depth(depth_run([1.0, 1.0, 1.0, 1.0], extra={"layers.0.q.weight": 1e-7}))
    assert found == []


def test_blocks_whose_weights_move_normally_are_learning():
    """With Adam the updates do not shrink with the gradients: the update ratio vetoes the finding."""
    stack = [1e-4, 1e-3, 1e-2, 1.0]
    assert gradient_depth(depth_run(stack, ratios=[1e-3, 1e-3, 1e-3, 1e-3])) == []
    (f,) = gradient_depth(depth_run(stack, ratios=[1e-7, 1e-6, 1e-5, 1e-3]))       # SGD: they do shrink
    assert f.code == "vanishing-gradients" and f.evidence["layers"][0]["update_ratio"] == 1e-7


def test_exploding_gradients_across_depth():
    (f,) = gradient_depth(depth_run([1e5, 1e3, 10, 1.0]))
    assert (f.code, f.module) == ("exploding-gradients", "layers.0")
    assert [b["module"] for b in f.evidence["layers"]] == ["layers.0", "layers.1", "layers.2"]
    assert gradient_depth(depth_run([1e2, 10, 3, 1.0])) == []


def growth_run(factor):
    tree = make_tree([tensor("a.weight"), tensor("b.weight")])
    grads = frame({"a.weight": [1, 2, 5, factor], "b.weight": [0, 0, 0, 0]})
    return run(tree, grad_norm=grads)


def test_exploding_gradients_across_steps():
    (f,) = gradient_growth(growth_run(T.EXPLODING_STEP_GROWTH * 2))
    assert (f.code, f.severity, f.module, f.location) == ("exploding-gradients", "warning", "a", LOC)
    g = f.evidence["total_grad_norm"]
    assert g["start"] == 1 and g["peak"] == T.EXPLODING_STEP_GROWTH * 2 and g["peak_step"] == 3
    assert f.evidence["layers"][0] == {"name": "a.weight", "module": "a", "growth": T.EXPLODING_STEP_GROWTH * 2}
    assert gradient_growth(growth_run(T.EXPLODING_STEP_GROWTH * 0.5)) == []


# -- update-ratio -------------------------------------------------------------------------------------
def ratio_run(values, others=1e-3):
    tree = make_tree([tensor("a.weight"), tensor("b.weight"), tensor("c.weight"), tensor("c.bias", shape=(4,))])
    return run(tree, update_ratio=frame({"a.weight": [values] * 3, "b.weight": [values] * 3,
                                         "c.weight": [others] * 3, "c.bias": [values] * 3}))


@pytest.mark.parametrize("value,word", [(T.UPDATE_RATIO_HIGH * 2, "high"), (T.UPDATE_RATIO_LOW / 2, "low")])
def test_update_ratio_far_from_usual_in_many_layers(value, word):
    (f,) = update_ratio(ratio_run(value))
    assert (f.code, f.severity, f.module, f.location) == ("update-ratio", "warning", "a", LOC)
    assert f"too {word}" in f.title and f.evidence["lr"] == [1e-3] and f.evidence["layers_checked"] == 3
    assert [l["name"] for l in f.evidence["layers"]] == ["a.weight", "b.weight"]     # never the bias
    assert ("Lower" if word == "high" else "Raise") in f.fix


def test_update_ratio_edges():
    assert update_ratio(ratio_run(T.UPDATE_RATIO_HIGH * 0.9)) == []
    assert update_ratio(ratio_run(T.UPDATE_RATIO_LOW * 1.1)) == []
    assert update_ratio(ratio_run(0.0)) == []                        # no update at all: weights-not-updating
    assert update_ratio(ratio_run(1e-3, others=T.UPDATE_RATIO_HIGH * 2)) == []   # one layer of three


# -- memory-growth ------------------------------------------------------------------------------------
def memory_run(per_step, steps=10, column="mem.rss_bytes", base=400 << 20):
    values = [base + per_step * s for s in range(steps)]
    values[0] -= 50 << 20       # step 0 allocates optimizer state: skipped
    return run(scalars=frame({column: values}))


def test_memory_growth_on_rss():
    slope = T.MEMORY_RSS_SLOPE * 8
    (f,) = memory_growth(memory_run(slope))
    assert (f.code, f.severity, f.module, f.location) == ("memory-growth", "warning", None, None)
    assert f.evidence["series"] == "mem.rss_bytes" and f.evidence["slope_bytes_per_step"] == pytest.approx(slope)
    assert f.evidence["steps"][0] == T.MEMORY_SKIP_STEPS and f.evidence["growth_bytes"] == slope * 8
    assert "item()" in f.fix


def test_memory_growth_edges():
    assert memory_growth(memory_run(T.MEMORY_RSS_SLOPE * 0.9, steps=200)) == []             # slope too small
    assert memory_growth(memory_run(T.MEMORY_RSS_SLOPE * 2, steps=10)) == []                # total too small
    assert memory_growth(memory_run(T.MEMORY_RSS_SLOPE * 2, steps=40)) != []
    assert memory_growth(memory_run(64 << 20, steps=T.MEMORY_MIN_STEPS)) == []               # too few steps
    jump = [400 << 20] * 5 + [900 << 20] * 5                 # a cache filled once: one jump, not a leak
    assert memory_growth(run(scalars=frame({"mem.rss_bytes": jump}))) == []


def test_memory_growth_prefers_cuda():
    values = frame({"mem.cuda_allocated_bytes": [(64 << 20) * s for s in range(10)],
                    "mem.rss_bytes": [(64 << 20) * s for s in range(10)]})
    (f,) = memory_growth(run(scalars=values))
    assert f.evidence["series"] == "mem.cuda_allocated_bytes" and "CUDA" in f.title


# -- dataloader-stall ---------------------------------------------------------------------------------
def stall_run(share, device="cpu", workers=0, cpus=4, step=0.05, steps=6):
    """Steps after start-up wait `share` of the step; the first max(1, workers) wait for workers to start."""
    warmup = max(1, workers)
    wait = [0.5] * warmup + [step * share] * steps
    scalars = frame({"data_wait_s": wait, "step_time_s": [0.6] * warmup + [step] * steps})
    meta = {"device": device, "cpus": cpus, "loader": {"class": "DataLoader", "num_workers": workers,
                                                       "pin_memory": False, "persistent_workers": False}}
    return run(scalars=scalars, meta=meta)


def test_dataloader_stall_advice_fits_cpu():
    (f,) = dataloader_stall(stall_run(0.8))
    assert (f.code, f.severity, f.module, f.location) == ("dataloader-stall", "warning", None, None)
    assert f.evidence["median_share"] == pytest.approx(0.8) and f.evidence["steps"] == 6
    assert f.evidence["suggested_num_workers"] == 4 and "num_workers from 0 to 4" in f.fix
    assert "pin_memory" not in f.fix and "persistent_workers" not in f.fix


def test_dataloader_stall_advice_fits_cuda_and_busy_cpus():
    (f,) = dataloader_stall(stall_run(0.8, device="cuda:0", workers=2, cpus=16))
    assert "from 2 to 4" in f.fix and "pin_memory=True" in f.fix and "persistent_workers=True" in f.fix
    (f,) = dataloader_stall(stall_run(0.8, workers=4, cpus=4))
    assert f.evidence["suggested_num_workers"] is None and "cheaper" in f.fix


def test_dataloader_stall_points_at_the_loader_when_known():
    data = stall_run(0.8)
    data.meta["loader_location"] = "model.py:38"       # the check worker: where make_loader() builds it
    (f,) = dataloader_stall(data)
    assert (f.module, f.location) == (None, "model.py:38")


def test_dataloader_stall_edges():
    assert dataloader_stall(stall_run(T.DATA_WAIT_SHARE * 0.9)) == []
    assert dataloader_stall(stall_run(T.DATA_WAIT_SHARE * 1.1)) != []
    assert dataloader_stall(stall_run(0.9, step=T.DATA_WAIT_MIN_S)) == []                     # tiny waits
    assert dataloader_stall(stall_run(0.9, steps=T.DATA_WAIT_MIN_STEPS - 1)) == []           # too few steps
    assert dataloader_stall(stall_run(0.9, steps=T.DATA_WAIT_MIN_STEPS)) != []


def test_dataloader_stall_skips_each_workers_start_up():
    """Eight workers start one after another: their first batches wait, the steady state does not."""
    data = stall_run(0.1, workers=8, cpus=8, steps=4)
    data.scalars.iloc[:8] = [[0.04, 0.05]] * 8          # start-up batches: 80% of the step waiting
    assert dataloader_stall(data) == []
    data.meta["loader"]["num_workers"] = 0              # the same waits without workers: a real stall
    (f,) = dataloader_stall(data)
    assert f.evidence["steps"] == 11


# -- suspicious-initial-loss --------------------------------------------------------------------------
def loss_run(first, classes=10):
    tree = make_tree([tensor("body.weight"), tensor("out.weight")])
    return run(tree, scalars=frame({"loss": [first, 1.0]}), meta={"classes": classes})


def test_suspicious_initial_loss_edges():
    expected = math.log(10)
    (f,) = suspicious_initial_loss(loss_run(expected * T.INITIAL_LOSS_RATIO * 1.1))
    assert (f.code, f.severity, f.module, f.location) == ("suspicious-initial-loss", "info", "out", LOC)
    assert f.evidence["classes"] == 10 and f.evidence["expected"] == pytest.approx(expected)
    assert suspicious_initial_loss(loss_run(expected / T.INITIAL_LOSS_RATIO / 1.1)) != []
    assert suspicious_initial_loss(loss_run(expected * T.INITIAL_LOSS_RATIO * 0.9)) == []
    assert suspicious_initial_loss(loss_run(expected / T.INITIAL_LOSS_RATIO * 1.1)) == []
    assert suspicious_initial_loss(loss_run(30.0, classes=None)) == []        # classes unknown: skip


def test_suspicious_initial_loss_through_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "probes", "check", "sample_models/suspicious_initial_loss.py",
                           "--steps", "3", "--run-dir", str(tmp_path), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    result = json.loads(proc.stdout)
    (f,) = [f for f in result["findings"] if f["code"] == "suspicious-initial-loss"]
    assert f["severity"] == "info" and f["module"] == "out"
    assert f["location"].startswith("sample_models/suspicious_initial_loss.py:")
    assert f["evidence"]["classes"] == 10 and f["evidence"]["loss"] > 3 * math.log(10)
    assert proc.returncode == 0


# -- the whole set, on a real run log ----------------------------------------------------------------
def test_check_run_on_a_real_run_log_is_ordered_and_plain(tmp_path):
    w = RunWriter(tmp_path / DB_NAME)
    w.set_meta(device="cpu", cpus=2, optimizers=[{"class": "SGD", "param_groups": [{"lr": 0.0}]}])
    names = ["fc.weight", "head.weight"]
    w.write_tree(-1, make_tree([tensor("fc.weight"), tensor("head.weight", optimizer=None)]))
    for step in range(4):
        w.write_step(step, {"loss": 2.0, "step_time_s": 0.01, "data_wait_s": 0.0, "mem.rss_bytes": 4e8},
                     {"grad_norm": (names, [1.0, 0.5]), "update_norm": (names, [0.0, math.nan]),
                      "update_ratio": (names, [0.0, math.nan]), "act_nonfinite_frac": (["", "fc"], [0.0, 0.0])})
    w.close()
    with RunReader(tmp_path) as reader:             # series are read lazily: check inside the reader
        data = RunData.from_reader(reader)
        found = check_run(data)
        assert check_run(data) == found                               # deterministic
    assert codes(found) == ["param-not-in-optimizer", "weights-not-updating"]
    assert [f.module for f in found] == ["head", "fc"]
    json.dumps([f.to_dict() for f in found], allow_nan=False)       # plain data, no NaN, no numpy


def test_run_checks_do_not_import_torch():
    # every module of probes/detectors (one per code), and the catalogue that lists them
    code = ("import sys, pkgutil, importlib, probes.detectors, probes.catalog; "
            "names = [m.name for m in pkgutil.iter_modules(['probes/detectors'])]; assert len(names) > 20; "
            "[importlib.import_module('probes.detectors.' + n) for n in names]; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    # probes/__init__ may import torch: load the check modules without the package's own imports
    proc = subprocess.run([sys.executable, "-c", "import importlib.util, sys, types;"
                           "pkg = types.ModuleType('probes'); pkg.__path__ = ['probes']; sys.modules['probes'] = pkg;"
                           + code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(RUN_CHECKS) == 12


def test_make_optimizer_may_return_several_for_the_default_step(tmp_path):
    """Two optimizers over two parts of the model (the worker steps both): nothing is left out."""
    model_file = tmp_path / "two_optimizers.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = nn.Linear(16, 32)\n"
        "        self.head = nn.Linear(32, 4)\n\n"
        "    def forward(self, x):\n"
        "        return self.head(torch.relu(self.body(x)))\n\n\n"
        "def make_optimizer(model):\n"
        "    return [torch.optim.Adam(model.body.parameters(), lr=1e-3),\n"
        "            torch.optim.SGD(model.head.parameters(), lr=0.05)]\n")
    proc = subprocess.run([sys.executable, "-m", "probes", "check", str(model_file), "--steps", "4",
                           "--run-dir", str(tmp_path / "runs"), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    result = json.loads(proc.stdout)
    assert result["error"] is None and result["steps"] == 4
    assert [f for f in result["findings"] if f["severity"] != "info"] == []
    with RunReader(result["run_dir"]) as reader:
        meta = reader.meta()
        moved = reader.series("update_norm")
    assert [o["class"] for o in meta["optimizers"]] == ["Adam", "SGD"] and meta["classes"] == 4
    assert (moved.dropna(axis=1, how="all") > 0).all().all() and moved.shape[1] == 4


def test_a_stray_tensor_is_named_when_the_first_forward_fails(tmp_path):
    """Without make_batch the worker's first forward (to infer targets) runs before any run log exists:
    the mixed-devices finding comes from a tree taken at the failure, next to the error."""
    sample = (ROOT / "sample_models" / "mixed_devices.py").read_text()
    model_file = tmp_path / "meta_table.py"
    model_file.write_text(sample[:sample.index("def make_batch")])
    proc = subprocess.run([sys.executable, "-m", "probes", "check", str(model_file), "--steps", "2",
                           "--run-dir", str(tmp_path / "runs"), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    result = json.loads(proc.stdout)
    assert proc.returncode == 2 and result["steps"] == 0 and "in forward" in result["error"]
    (f,) = result["findings"]
    line = next(i for i, text in enumerate(sample.splitlines(), 1) if "self.positions =" in text)
    assert (f["code"], f["module"], f["location"]) == ("mixed-devices", "", f"{model_file}:{line}")
    assert f["evidence"]["attributes"][0]["name"] == "positions"


def test_dataloader_stall_verdict_holds_under_machine_load():
    """A loader that costs about half of each step is a stall whether or not the machine is busy: a busy
    machine slows some steps' compute (here a third of them 3x), which must not flip the verdict."""
    rng = np.random.default_rng(0)
    for trial in range(20):
        steps = 12
        wait = np.full(steps, 0.005) * rng.uniform(0.9, 1.1, steps)
        compute = np.full(steps, 0.0045) * rng.uniform(0.9, 1.1, steps)
        busy = rng.random(steps) < 1 / 3
        compute[busy] *= 3
        scalars = frame({"data_wait_s": [0.5, *wait], "step_time_s": [0.6, *(wait + compute)]})
        meta = {"device": "cpu", "cpus": 2, "loader": {"class": "DataLoader", "num_workers": 0}}
        (f,) = dataloader_stall(run(scalars=scalars, meta=meta))
        assert 0.45 < f.evidence["median_share"] < 0.6, trial
    # a loader that keeps up (0.2 ms a batch beside a 5 ms step) is not a stall, busy or not
    quiet = frame({"data_wait_s": [0.5] + [0.0002] * 12, "step_time_s": [0.6] + [0.005, 0.015] * 6})
    assert dataloader_stall(run(scalars=quiet, meta={"loader": {"num_workers": 0}})) == []
