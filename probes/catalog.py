"""The findings catalogue: every public finding code, where it comes from, and where to see it.

One entry per code, in the order of the README's findings table: its usual severity and the ones it can
take, a one-line title, the README's summary, the detector module that builds its findings (the only place
that does, probes/detectors/<code>.py), the watcher module that observes it live (or None: a tree or run
check, or the checkpoint and compile checks), its bug sample and fixed twin under sample_models/, and the
evidence chart app/evidence.py draws for it (a name in app.evidence.CHARTS, or None).

`python -m probes codes` prints it (`--json`: a list of objects). Torch-free: the command, the dashboard and
the tests read it without importing torch. tests/test_layout.py holds it to the code: each detector module
builds its code and no other module does, the samples name their code, the README table is `readme_rows()`.

Not codes: a few names look like codes but are no finding (NOT_CODES says what each is).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Entry:
    code: str                       # public, stable
    severity: str                   # the usual one (the README's)
    severities: tuple[str, ...]     # every severity its findings can take, the usual one first
    title: str                      # one line
    detector: str                   # the module that builds its findings (probes.detectors.<code>)
    watcher: str | None             # the module of the watcher(s) that observe it live, if any
    samples: tuple[str, ...]        # the bug sample and its fixed twin (paths under sample_models/)
    chart: str | None               # the evidence chart app/evidence.py draws for it (app.evidence.CHARTS)
    summary: str                    # the README's "what" column (markdown)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["severities"], out["samples"] = list(self.severities), list(self.samples)
        return out


CATALOG: tuple[Entry, ...] = (
    Entry("layer-created-in-forward", "error", ("error",),
          "A layer or weight built inside forward(): fresh random weights every call",
          detector="probes.detectors.layer_created_in_forward", watcher="probes.watchers.layer_created_in_forward",
          samples=("sample_models/layer_created_in_forward.py", "sample_models/layer_created_in_forward_fixed.py"),
          chart=None,
          summary=('a module or `nn.Parameter` built inside `forward()`: fresh random weights every call, and '
                   'the optimizer updates tensors that are thrown away')),
    Entry("missing-super-init", "error", ("error",),
          "An nn.Module's __init__ does not call super().__init__() first",
          detector="probes.detectors.missing_super_init", watcher=None,
          samples=("sample_models/missing_super_init.py", "sample_models/missing_super_init_fixed.py"),
          chart=None,
          summary=('an `nn.Module` subclass whose `__init__` does not call `super().__init__()` first')),
    Entry("unregistered-module", "error", ("error",),
          "Layers kept in a plain list/dict/tuple/set: PyTorch cannot see them",
          detector="probes.detectors.unregistered_module", watcher=None,
          samples=("sample_models/unregistered_module.py", "sample_models/unregistered_module_fixed.py"),
          chart=None,
          summary=('modules held in a plain list/dict/tuple/set attribute instead of '
                   '`nn.ModuleList`/`nn.ModuleDict`: not in `parameters()`, not moved by `.to()`, not saved')),
    Entry("unregistered-parameter", "error", ("error",),
          "A trainable tensor kept as a plain attribute, not an nn.Parameter",
          detector="probes.detectors.unregistered_parameter", watcher=None,
          samples=("sample_models/unregistered_parameter.py", "sample_models/unregistered_parameter_fixed.py"),
          chart=None,
          summary=('a tensor with `requires_grad=True` kept as a plain attribute (or a list of Parameters) '
                   'instead of `nn.Parameter`/`nn.ParameterList`')),
    Entry("gradient-chain-broken", "error", ("error",),
          "Forward or the loss cuts the autograd graph: parameters get no gradient",
          detector="probes.detectors.gradient_chain_broken", watcher="probes.watchers.gradient_chain_broken",
          samples=("sample_models/gradient_chain_broken.py", "sample_models/gradient_chain_broken_fixed.py"),
          chart=None,
          summary=('parameters used in forward end backward with `grad is None` because forward cut the graph '
                   '(`.detach()`, `.numpy()`, `.item()`, `.data`, `float()`, layers run under `torch.no_grad()` '
                   'after trained layers); a loss that reaches no parameter (rebuilt with '
                   '`torch.tensor(loss.item(), requires_grad=True)`); a loss with no graph at all, named before '
                   'its `backward()` raises (argmax predictions into the loss). A crash that is the symptom is '
                   'reported with the finding')),
    Entry("param-not-in-optimizer", "error", ("error",),
          "Parameters that get gradients but that no optimizer updates",
          detector="probes.detectors.param_not_in_optimizer", watcher=None,
          samples=("sample_models/param_not_in_optimizer.py", "sample_models/param_not_in_optimizer_fixed.py"),
          chart=None,
          summary=('trainable parameters that receive gradients but are in no optimizer; or optimizer tensors '
                   'the model no longer holds')),
    Entry("nonfinite-values", "error", ("error",),
          "NaN/Inf in the loss, gradients, weights or activations",
          detector="probes.detectors.nonfinite_values", watcher=None,
          samples=("sample_models/nonfinite_values.py", "sample_models/nonfinite_values_fixed.py"),
          chart="nonfinite_chart",
          summary=('NaN/Inf in the loss, gradients, weights or activations: the first step, and the first module '
                   'where it appears')),
    Entry("mixed-devices", "error", ("error",),
          "A module's tensors, or its inputs, on different devices",
          detector="probes.detectors.mixed_devices", watcher="probes.watchers.mixed_devices",
          samples=("sample_models/mixed_devices.py", "sample_models/mixed_devices_fixed.py"),
          chart=None,
          summary=("one module's parameters and buffers on different devices, a plain tensor attribute that "
                   '`.to()` / `.to_empty()` left behind (with its line), or a module called with an input on '
                   'another device')),
    Entry("ranks-out-of-sync", "error", ("error",),
          "Parameters that differ between data-parallel ranks",
          detector="probes.detectors.ranks_out_of_sync", watcher=None,
          samples=(),
          chart=None,
          summary=('under `torch.distributed`: parameters that should be equal on every rank (data parallel) '
                   'differ, e.g. a checkpoint loaded on rank 0 only after wrapping in DDP; names the parameters, '
                   'ranks and first step')),
    Entry("state-dict-mismatch", "error", ("error", "warning"),
          "A checkpoint that does not load into the model",
          detector="probes.detectors.state_dict_mismatch", watcher=None,
          samples=(),
          chart=None,
          summary=('`checkpoint` only: the checkpoint does not load into the model (keys, shapes, a `module.` '
                   'prefix) or would need pickled code to load; a warning when only dtypes differ')),
    Entry("weights-not-updating", "error", ("error",),
          "Weights with gradients that the optimizer never changes",
          detector="probes.detectors.weights_not_updating", watcher=None,
          samples=("sample_models/weights_not_updating.py", "sample_models/weights_not_updating_fixed.py"),
          chart=None,
          summary=('parameters the optimizer holds, with non-zero gradients, whose values do not change (e.g. a '
                   'learning rate of 0), or stop changing midway (a schedule stuck at 0)')),
    Entry("loss-input-mismatch", "error", ("error",),
          "The loss gets the wrong kind of input (probabilities, logits)",
          detector="probes.detectors.loss_input_mismatch", watcher="probes.watchers.loss_input_mismatch",
          samples=("sample_models/loss_input_mismatch.py", "sample_models/loss_input_mismatch_fixed.py"),
          chart=None,
          summary=("the loss gets the wrong kind of input, read from the loss's autograd graph: softmax or "
                   'sigmoid outputs into `CrossEntropyLoss`/`F.cross_entropy` (a hand-written softmax too); '
                   '`NLLLoss` on anything but log-probabilities (an input above 0 is proof); `BCEWithLogitsLoss` '
                   "after a sigmoid; `BCELoss` on raw scores (its crash explained). Gives the values' range and "
                   "row sums, and the loss call's line. Quiet on `log_softmax` + `NLLLoss`, label smoothing, "
                   'soft targets and distillation')),
    Entry("gradients-accumulate", "error", ("error",),
          "Gradients are never cleared between optimizer steps",
          detector="probes.detectors.gradients_accumulate", watcher="probes.watchers.gradients_accumulate",
          samples=("sample_models/gradients_accumulate.py", "sample_models/gradients_accumulate_fixed.py"),
          chart="accumulated_gradients_chart",
          summary=('`.grad` is never cleared between two steps of an optimizer (`zero_grad()` missing, or once '
                   'per epoch): a few gradients are followed from one step to the next, and the finding shows '
                   'how they piled up. Deliberate accumulation (N backward passes, step, `zero_grad`), every way '
                   'of clearing (`model.zero_grad()`, `p.grad = None`, `set_to_none=False`) and a GAN critic '
                   "that gets the generator's gradients stay clean")),
    Entry("loss-shape-broadcast", "error", ("error",),
          "Prediction and target shapes broadcast in a regression loss",
          detector="probes.detectors.loss_shape_broadcast", watcher="probes.watchers.loss_shape_broadcast",
          samples=("sample_models/loss_shape_broadcast.py", "sample_models/loss_shape_broadcast_fixed.py"),
          chart=None,
          summary=('`MSE`/`L1`/`SmoothL1`/`Huber` loss whose prediction and target shapes differ and broadcast: '
                   '`(B, 1)` against `(B,)` is a `(B, B)` comparison; names both shapes and the loss line (also '
                   'for a loss computed inside `forward`)')),
    Entry("optimizer-not-stepping", "error", ("error",),
          "Backward runs but the optimizer never applies it",
          detector="probes.detectors.optimizer_not_stepping", watcher="probes.watchers.optimizer_not_stepping",
          samples=("sample_models/optimizer_not_stepping.py", "sample_models/optimizer_not_stepping_fixed.py"),
          chart=None,
          summary=('backward runs but the optimizer never steps (`scheduler.step()` in place of '
                   '`optimizer.step()`, seen live when `zero_grad()` runs between backward passes); `step()` on '
                   'gradients already cleared (`zero_grad()` between `backward()` and `step()`); `step()` with '
                   'no gradients at all (`backward()` missing). LBFGS closures stay clean')),
    Entry("param-unreached", "warning", ("warning", "error"),
          "Parameters the optimizer holds that no backward reaches",
          detector="probes.detectors.param_unreached", watcher="probes.watchers.param_unreached",
          samples=("sample_models/param_unreached.py", "sample_models/param_unreached_fixed.py"),
          chart=None,
          summary=('trainable parameters the optimizer holds that no backward reaches, on each of the first '
                   'diagnostic steps: a layer defined and never used, a branch whose output is thrown away '
                   '(rolled up to the module, with the line that defines it); an error when the loss reaches no '
                   'parameter at all. A parameter its module uses only on some inputs (a mask token) and a head '
                   'left out of the optimizer stay clean')),
    Entry("train-mode-off", "warning", ("warning",),
          "Training steps run in eval mode (model.train() not called back)",
          detector="probes.detectors.train_mode_off", watcher="probes.watchers.train_mode_off",
          samples=("sample_models/train_mode_off.py", "sample_models/train_mode_off_fixed.py"),
          chart=None,
          summary=('Dropout/BatchNorm switched off while the optimizer steps: the model is still in eval mode '
                   'after a validation pass (`model.train()` not called back); names the validation line. Quiet '
                   'when only BatchNorm is frozen on purpose and for attacks or inference in eval mode followed '
                   'by `train()`')),
    Entry("forward-called-directly", "warning", ("warning",),
          "model.forward(x) instead of model(x): hooks are skipped",
          detector="probes.detectors.forward_called_directly", watcher="probes.watchers.forward_called_directly",
          samples=("sample_models/forward_called_directly.py", "sample_models/forward_called_directly_fixed.py"),
          chart=None,
          summary=('`model.forward(x)` instead of `model(x)`: hooks are skipped; gives the calling line')),
    Entry("eval-mode-missing", "warning", ("warning",),
          "Validation or inference without model.eval()",
          detector="probes.detectors.eval_mode_missing", watcher="probes.watchers.eval_mode_missing",
          samples=("sample_models/eval_mode_missing.py", "sample_models/eval_mode_missing_fixed.py"),
          chart=None,
          summary=('Dropout/BatchNorm in training mode under `no_grad`, or in two or more training-mode forwards '
                   'in a row that no backward uses (validation without `model.eval()`); quiet on Monte-Carlo '
                   'dropout (eval mode with Dropout switched back on), BatchNorm recalibration '
                   '(`swa_utils.update_bn`) and EMA copies')),
    Entry("vanishing-gradients", "warning", ("warning",),
          "Gradients fall steadily across depth towards the input",
          detector="probes.detectors.vanishing_gradients", watcher=None,
          samples=("sample_models/vanishing_gradients.py", "sample_models/vanishing_gradients_fixed.py"),
          chart="gradient_depth_chart",
          summary=('across depth: the RMS gradient per weight of each block (`encoder.layer.3`, `features.2`) '
                   'falling (or rising) steadily towards the input, 100x over the stack (10,000x for exploding), '
                   "judged per optimizer's network; vanishing is confirmed by the update ratio (a block whose "
                   'weights move at a normal rate, as under Adam, is learning). Across steps: the total gradient '
                   'norm growing 1,000x. Names the blocks')),
    Entry("exploding-gradients", "warning", ("warning",),
          "Gradients rise towards the input, or grow far over the run",
          detector="probes.detectors.exploding_gradients", watcher=None,
          samples=("sample_models/exploding_gradients.py", "sample_models/exploding_gradients_fixed.py"),
          chart="exploding_chart",
          summary=('across depth: the RMS gradient per weight of each block (`encoder.layer.3`, `features.2`) '
                   'falling (or rising) steadily towards the input, 100x over the stack (10,000x for exploding), '
                   "judged per optimizer's network; vanishing is confirmed by the update ratio (a block whose "
                   'weights move at a normal rate, as under Adam, is learning). Across steps: the total gradient '
                   'norm growing 1,000x. Names the blocks')),
    Entry("dead-units", "warning", ("warning",),
          "ReLU units that output zero for every input",
          detector="probes.detectors.dead_units", watcher="probes.watchers.dead_units",
          samples=("sample_models/dead_units.py", "sample_models/dead_units_fixed.py"),
          chart=None,
          summary=('units after a ReLU that are zero for (nearly) every input')),
    Entry("memory-growth", "warning", ("warning",),
          "Memory that grows every step (autograd graphs kept alive)",
          detector="probes.detectors.memory_growth", watcher="probes.watchers.memory_growth",
          samples=("sample_models/memory_growth.py", "sample_models/memory_growth_fixed.py"),
          chart="memory_chart",
          summary=('autograd graphs of three or more earlier steps still alive (`total_loss += loss`, a list of '
                   'outputs or losses), seen within 5 steps; otherwise memory that grows step over step')),
    Entry("dataloader-stall", "warning", ("warning",),
          "The loop waits for data a large share of each step",
          detector="probes.detectors.dataloader_stall", watcher=None,
          samples=("sample_models/dataloader_stall.py", "sample_models/dataloader_stall_fixed.py"),
          chart="data_wait_chart",
          summary=('the loop waits for data 30% or more of each step (the median wait against the lower quartile '
                   'of the compute time, so a busy machine does not flip the verdict); the advice fits the '
                   'loader, the CPUs and the device')),
    Entry("update-ratio", "warning", ("warning",),
          "Updates far from ~1e-3 of the weights: the learning rate is off",
          detector="probes.detectors.update_ratio", watcher=None,
          samples=("sample_models/update_ratio.py", "sample_models/update_ratio_fixed.py"),
          chart="update_ratio_chart",
          summary=('‖ΔW‖/‖W‖ (W before the step) far from the usual ~1e-3 for many layers, over the run or, for '
                   'too high, its first steps (learning rate too high or too low; not judged for LBFGS, which '
                   'picks its own step)')),
    Entry("suspicious-initial-loss", "info", ("info",),
          "A classifier's first loss far from log(classes)",
          detector="probes.detectors.suspicious_initial_loss", watcher=None,
          samples=("sample_models/suspicious_initial_loss.py", "sample_models/suspicious_initial_loss_fixed.py"),
          chart="initial_loss_chart",
          summary=("a classifier's first loss far from log(number of classes); the classes are read from a "
                   "cross-entropy's graph, so it works with your own `loss_fn`, `train_step` and in a Probe in "
                   'your loop')),
    Entry("compile-graph-breaks", "info", ("info",),
          "Where torch.compile would split forward (--compile-check)",
          detector="probes.detectors.compile_graph_breaks", watcher=None,
          samples=("sample_models/compile_graph_breaks.py", "sample_models/compile_graph_breaks_fixed.py"),
          chart=None,
          summary=('opt-in (`--compile-check`): where `torch.compile` would split forward, with your line and '
                   'the reason')),
)

BY_CODE: dict[str, Entry] = {e.code: e for e in CATALOG}
CODES: tuple[str, ...] = tuple(BY_CODE)

# names that look like finding codes, and are not: no finding is ever made with them
NOT_CODES = {
    "forgescope-heartbeat": "the name of the run log's heartbeat thread (probes/runs.py): readers tell a live "
                            "run from a killed one by the heartbeat file it touches; it reports nothing",
    "loss calls": "the guard key of the loss spy (probes/watchers/_loss_calls.py), which records loss calls for "
                  "the two loss watchers and emits no finding of its own",
}


def as_dicts() -> list[dict]:
    """The catalogue as plain data (what `codes --json` prints)."""
    return [e.to_dict() for e in CATALOG]


def readme_rows() -> list[str]:
    """The README's findings table rows: one per code, or one for consecutive codes that share their severity
    and summary (vanishing- and exploding-gradients)."""
    rows: list[list] = []
    for e in CATALOG:
        if rows and rows[-1][1:] == [e.severity, e.summary]:
            rows[-1][0].append(e.code)
        else:
            rows.append([[e.code], e.severity, e.summary])
    return [f"| {', '.join(f'`{c}`' for c in codes)} | {severity} | {summary} |" for codes, severity, summary in rows]


def render_text() -> str:
    """The catalogue as a text table: code, severity and title, then where each code comes from."""
    width = max(len(e.code) for e in CATALOG)
    sev_width = max(len("/".join(e.severities)) for e in CATALOG)
    lines = [f"{'code':<{width}}  {'severity':<{sev_width}}  title", f"{'-' * width}  {'-' * sev_width}  -----"]
    for e in CATALOG:
        lines.append(f"{e.code:<{width}}  {'/'.join(e.severities):<{sev_width}}  {e.title}")
        pad = " " * (width + 2)
        lines.append(f"{pad}detector {e.detector}" + (f"  ·  watcher {e.watcher}" if e.watcher else ""))
        lines.append(f"{pad}samples {', '.join(e.samples) or '-'}  ·  chart {e.chart or '-'}")
    lines.append(f"{len(CATALOG)} codes; `codes --json` prints them as JSON.")
    return "\n".join(lines)


def print_codes(as_json: bool = False) -> int:
    """`python -m probes codes [--json]`: exit 0."""
    print(json.dumps(as_dicts(), indent=2) if as_json else render_text())
    return 0
