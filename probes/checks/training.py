"""Training run checks, errors: weights the optimizer never sees, weights that never move, NaN/Inf values,
and modules split across devices. Pure functions over the run log (no torch), see base.py.

The helpers at the top (which module a parameter belongs to, where its class is defined, which steps have
data) are shared with dynamics.py and resources.py.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ..findings import Finding
from . import thresholds as T
from .base import RunData


# -- shared helpers -----------------------------------------------------------------------------------
def module_order(tree: dict | None) -> dict[str, int]:
    """module path -> position in the tree (registration order, which is forward order in most models)."""
    return {m["path"]: i for i, m in enumerate((tree or {}).get("modules", []))}


def module_location(tree: dict | None, path: str | None) -> str | None:
    """'file:line' of the nearest user class at or above `path` (PyTorch's own classes have none)."""
    if tree is None or path is None:
        return None
    where = {m["path"]: m.get("location") for m in tree.get("modules", [])}
    while True:
        if where.get(path):
            return where[path]
        if not path:
            return None
        path = path.rpartition(".")[0]


def optimizer_location(data: RunData, optimizers) -> str | None:
    """'file:line' where these optimizers are built, when they are all built on one line (the check worker
    records it from make_optimizer(); a Probe in the user's own loop does not know it)."""
    known = data.meta.get("optimizer_locations") or []
    lines = {known[i] for i in optimizers if isinstance(i, int) and 0 <= i < len(known) and known[i]}
    return lines.pop() if len(lines) == 1 else None


def parameters(tree: dict | None) -> list[dict]:
    """The model's parameters, each once (a tied weight's second name dropped), in tree order."""
    return [t for t in (tree or {}).get("tensors", []) if t["kind"] == "parameter" and not t.get("duplicate")]


def weight_matrices(tree: dict | None) -> list[dict]:
    """Parameters with 2+ dimensions: biases and norm scales start at 0/1, so their ratios mean little."""
    return [t for t in parameters(tree) if t.get("shape") and len(t["shape"]) >= 2]


def finite(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.replace([np.inf, -np.inf], np.nan)


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(dtype=float)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _names(items: list[str], limit: int = 5) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


# -- param-not-in-optimizer ---------------------------------------------------------------------------
def param_not_in_optimizer(data: RunData) -> list[Finding]:
    tree = data.tree
    if not tree or not tree.get("n_optimizers", len(data.meta.get("optimizers", []))):
        return []           # manual steps (probe.step()) without an optimizer: nothing to compare with
    grads = data.series("grad_norm")
    found: list[Finding] = []
    by_module: dict[str, list[dict]] = {}
    for t in parameters(tree):
        if not t["requires_grad"] or t["optimizer"] is not None or t.get("lazy"):
            continue
        seen = finite(column(grads, t["name"])).dropna()
        if seen.empty:
            continue        # no gradient ever reached it: unused, not forgotten
        by_module.setdefault(t["module"], []).append({"name": t["name"], "shape": t["shape"],
                                                      "numel": t["numel"],
                                                      "grad_norm": float(seen.iloc[-1]),
                                                      "step": int(seen.index[-1])})
    by_module = _rolled_up(by_module, tree)
    order = module_order(tree)
    for module, items in sorted(by_module.items(), key=lambda kv: order.get(kv[0], len(order))):
        names = [i["name"] for i in items]
        numel = sum(i["numel"] for i in items)
        found.append(Finding(
            code="param-not-in-optimizer", severity="error",
            title=f"{_names(names)} get gradients but no optimizer updates them",
            detail=(f"{len(items)} trainable parameter(s) of {module or 'the model'} ({numel:,} values) receive "
                    f"gradients, but none of the optimizer's param groups holds them, so they never change. "
                    f"Typically the optimizer was built over part of the model (model.backbone.parameters()) "
                    f"or before a layer was added or replaced."),
            module=module,
            location=(optimizer_location(data, range(len(data.meta.get("optimizer_locations") or [])))
                      or module_location(tree, module)),
            evidence={"parameters": items, "optimizers": len(data.meta.get("optimizers", []))},
            fix=("Build the optimizer over model.parameters() after the model is complete, or add these to a "
                 "param group (optimizer.add_param_group({'params': ...})); if they should stay fixed, "
                 "set requires_grad_(False).")))
    foreign = tree.get("optimizer_only", [])
    if foreign:
        found.append(Finding(
            code="param-not-in-optimizer", severity="error",
            title=f"The optimizer updates {len(foreign)} tensor(s) that are not in the model",
            detail=("Some tensors in the optimizer's param groups are not parameters of the model any more: "
                    "the layer was replaced after the optimizer was built, or the optimizer was given copies "
                    "(clone(), deepcopy, .to() of a tensor). The optimizer trains those copies; the model "
                    "never changes."),
            module="",
            location=(optimizer_location(data, {f["optimizer"] for f in foreign})
                      or module_location(tree, "")),
            evidence={"tensors": foreign[:20], "count": len(foreign)},
            fix="Build the optimizer from model.parameters() after the model is built, moved and modified."))
    return found


def _trainable_under(tree: dict) -> dict[str, set[str]]:
    """module path -> names of the trainable parameters at or below it."""
    out: dict[str, set[str]] = {}
    for t in parameters(tree):
        if t["requires_grad"] and not t.get("lazy"):
            parts = t["module"].split(".") if t["module"] else []
            for k in range(len(parts) + 1):
                out.setdefault(".".join(parts[:k]), set()).add(t["name"])
    return out


def _outermost(module: str, names: set[str], trainable: dict[str, set[str]]) -> str:
    """Move up from `module` while the parent's trainable parameters are all among `names`."""
    while module:
        parent = module.rpartition(".")[0]
        if not trainable.get(parent, set()) <= names:
            break
        module = parent
    return module


def _rolled_up(by_module: dict[str, list[dict]], tree: dict) -> dict[str, list[dict]]:
    """One group per outermost module all of whose trainable parameters are left out (a whole discriminator,
    not each of its 24 layers)."""
    missing = {i["name"] for items in by_module.values() for i in items}
    trainable = _trainable_under(tree)
    out: dict[str, list[dict]] = {}
    for module, items in by_module.items():
        out.setdefault(_outermost(module, missing, trainable), []).extend(items)
    return out


# -- weights-not-updating -----------------------------------------------------------------------------
def weights_not_updating(data: RunData) -> list[Finding]:
    tree = data.tree
    if _never_stepped(data):
        return []           # an optimizer that never steps: optimizer-not-stepping says so
    grads, updates = data.series("grad_norm"), data.series("update_norm")
    # steps marked by hand (probe.step(), a hand-written update): every trainable parameter is "held"
    manual = bool(tree) and not tree.get("n_optimizers", len(data.meta.get("optimizers", [])))
    held = [t for t in parameters(tree)
            if (t["optimizer"] is not None or (manual and t["requires_grad"]))
            and t["name"] in updates.columns and t["name"] in grads.columns]
    stuck: list[dict] = []
    if held:
        # all parameters at once (a per-parameter pandas loop took ~2 s on 500 parameters x 100,000 steps):
        # the steps both were recorded on, where the gradient is finite and above the floor
        steps = grads.index.intersection(updates.index)
        names = [t["name"] for t in held]
        g = grads.loc[steps, names].to_numpy(dtype=np.float64)
        u = updates.loc[steps, names].to_numpy(dtype=np.float64)
        # the model's typical gradient at each step (over every parameter with one), for the relative floor
        every = grads.loc[steps].to_numpy(dtype=np.float64)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)         # a step where no gradient was recorded
            typical = np.nanmedian(np.where(np.isfinite(every) & (every > 0), every, np.nan), axis=1)
        floor = np.maximum(T.NOT_UPDATING_MIN_GRAD, np.nan_to_num(typical, nan=0.0) * T.NOT_UPDATING_REL_GRAD)
        usable = np.isfinite(g) & np.isfinite(u) & (g > floor[:, None])
        for j, t in enumerate(held):
            rows = np.flatnonzero(usable[:, j])
            if len(rows) < T.NOT_UPDATING_MIN_STEPS:
                continue
            # the steps at the end of the run on which it stopped moving (all of them: it never moved)
            moving = np.flatnonzero(u[rows, j] != 0)
            still = rows if not len(moving) else rows[moving[-1] + 1:]
            if len(still) < max(T.NOT_UPDATING_MIN_STEPS, T.NOT_UPDATING_TAIL_FRACTION * len(rows)):
                continue
            stuck.append({"name": t["name"], "module": t["module"], "optimizer": t["optimizer"],
                          "param_group": t["param_group"], "steps": [int(s) for s in steps[still[:10]]],
                          "since": int(steps[still[0]]), "moved_before": bool(len(moving)),
                          "grad_norm": float(np.median(g[still, j])), "update_norm": 0.0})
    if not stuck:
        return []
    lrs = {}
    for s in stuck:
        try:
            lr = data.meta["optimizers"][s["optimizer"]]["param_groups"][s["param_group"]].get("lr")
        except (KeyError, IndexError, TypeError):
            lr = None
        lrs[f"{s['optimizer']}/{s['param_group']}"] = lr
    zero_lr = any(v == 0 for v in lrs.values())
    modules = sorted({s["module"] for s in stuck}, key=lambda m: module_order(tree).get(m, 0))
    module = modules[0] if len(modules) == 1 else _common_parent(modules)
    names = [s["name"] for s in stuck]
    stopped = all(s["moved_before"] for s in stuck)
    since = min(s["since"] for s in stuck)
    return [Finding(
        code="weights-not-updating", severity="error",
        title=(f"{_names(names)} stopped changing at step {since}, with gradients" if stopped else
               f"{_names(names)} have gradients but do not change"),
        detail=(f"{len(stuck)} parameter(s) {'the step updates' if manual else 'held by the optimizer'} received "
                f"non-zero gradients on {len(stuck[0]['steps'])}+ steps"
                + (f" from step {since} on (they moved before)" if stopped else "")
                + f", yet {'each step' if manual else 'optimizer.step()'} left them exactly as they were"
                + (" — the learning rate the optimizer started with is 0" if zero_lr else "")
                + ". Usual causes: lr=0 (a warm-up schedule computed with integer division, a scheduler "
                  "multiplying by 0), or weights restored after every step."),
        module=module,
        location=optimizer_location(data, {s["optimizer"] for s in stuck}) or module_location(tree, module),
        evidence={"parameters": stuck[:20], "count": len(stuck), "lr": lrs},
        fix=("Check the learning rate each step (optimizer.param_groups[0]['lr']): a warm-up factor like "
             "step // warmup is 0 until the end of warm-up; use step / warmup."))]


# -- optimizer-not-stepping ---------------------------------------------------------------------------
def optimizer_not_stepping(data: RunData) -> list[Finding]:
    """The end-of-run verdict: backward ran and an optimizer never stepped (the Probe's watcher names the
    other patterns live: zero_grad between backward and step, step without gradients)."""
    return _never_stepped(data)


def _never_stepped(data: RunData) -> list[Finding]:
    """backward() ran, yet not one optimizer step ended a step: optimizer.step() is never called."""
    calls = data.meta.get("backward_calls") or 0
    if calls and data.meta.get("optimizers") and len(data.scalars):
        return _one_never_stepped(data)
    if not calls or not data.meta.get("optimizers") or "loss" in data.scalars.columns and len(data.scalars):
        return []
    if data.meta.get("weights_changed") is not False:
        return []           # the weights did change (or could not be compared): something else stepped them
    held = [t["name"] for t in parameters(data.tree) if t["optimizer"] is not None and t["requires_grad"]]
    if not held:
        return []
    return [Finding(
        code="optimizer-not-stepping", severity="error",
        title=f"backward() ran {calls} time(s) but optimizer.step() was never called: no weight changed",
        detail=(f"The loop computed gradients {calls} time(s), and the optimizer "
                f"({', '.join(o.get('class', '?') for o in data.meta['optimizers'])}) never stepped, so all "
                f"{len(held)} parameter(s) it holds are exactly as they were initialised. Often "
                f"scheduler.step() is called where optimizer.step() belongs, or the step sits in a branch "
                f"that never runs."),
        module="", location=optimizer_location(data, range(len(data.meta.get("optimizer_locations") or [])))
        or module_location(data.tree, ""),
        evidence={"backward_calls": calls, "optimizer_steps": 0, "parameters": held[:20], "count": len(held)},
        fix="Call optimizer.step() after loss.backward() in every training step (then scheduler.step()).")]


def _one_never_stepped(data: RunData) -> list[Finding]:
    """With several optimizers: one of them never stepped while the others did, and none of the weights it
    holds changed although they got gradients (a GAN whose discriminator's optimizer.step() is missing)."""
    steps = data.meta.get("optimizer_steps") or []
    moved = data.meta.get("optimizer_weights_changed") or []
    if len(steps) < 2 or len(moved) != len(steps) or not any(steps):
        return []
    grads = finite(data.series("grad_norm"))
    found = []
    for i, (n, changed) in enumerate(zip(steps, moved)):
        if n or changed is not False:
            continue
        held = [t for t in parameters(data.tree) if t["optimizer"] == i and t["requires_grad"]]
        with_grad = [t for t in held if t["name"] in grads.columns and (grads[t["name"]] > 0).any()]
        if not with_grad:
            continue
        modules = sorted({t["module"] for t in held}, key=lambda m: module_order(data.tree).get(m, 0))
        module = _outermost(_common_parent(modules), {t["name"] for t in held}, _trainable_under(data.tree))
        cls = data.meta["optimizers"][i].get("class", "optimizer") if i < len(data.meta["optimizers"]) else "?"
        found.append(Finding(
            code="optimizer-not-stepping", severity="error",
            title=f"Optimizer {i} ({cls}, over {module or 'the model'}) never stepped: its weights never change",
            detail=(f"The other optimizer(s) stepped {', '.join(str(s) for s in steps if s)} time(s), but optimizer "
                    f"{i} ({cls}) never did, while the {len(with_grad)} parameter(s) it holds got gradients on every "
                    f"step. They are exactly as they were initialised: its optimizer.step() is missing, or sits "
                    f"in a branch that never runs."),
            module=module, location=optimizer_location(data, [i]) or module_location(data.tree, module),
            evidence={"optimizer": i, "optimizer_steps": steps, "parameters": [t["name"] for t in held][:20],
                      "count": len(held)},
            fix=f"Call optimizer {i}'s step() after its loss.backward() in every iteration."))
    return found


def _common_parent(paths: list[str]) -> str:
    parts = [p.split(".") if p else [] for p in paths]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


# -- nonfinite-values ---------------------------------------------------------------------------------
def nonfinite_values(data: RunData) -> list[Finding]:
    """The first step where NaN/Inf shows up anywhere, and the first module that produced it."""
    tree = data.tree
    candidates = []     # (step, rank, kind, module, evidence): rank orders kinds within a step
    acts = data.series("act_nonfinite_frac")
    bad_acts = acts[(acts > 0).any(axis=1)] if not acts.empty else acts
    if not bad_acts.empty:
        step = int(bad_acts.index[0])
        row = bad_acts.iloc[0]
        bad = [m for m in row.index if row[m] > 0]
        # a container's output is bad because a child's is: blame the modules whose children are all fine
        leaves = [m for m in bad if not any(o != m and (m == "" or o.startswith(m + ".")) for o in bad)]
        order = module_order(tree)
        first = min(leaves, key=lambda m: order.get(m, len(order)))
        candidates.append((step, 0, "activations", first,
                           {"modules": [{"module": m, "nonfinite_fraction": float(row[m])}
                                        for m in sorted(bad, key=lambda m: order.get(m, len(order)))][:20]}))
    owner = {t["name"]: t["module"] for t in parameters(tree)}
    order = list(owner)
    for rank, (series, kind) in enumerate((("grad_nonfinite", "gradients"), ("weight_nonfinite", "weights")), 2):
        counts = data.series(series)
        if counts.empty:
            continue
        hit = counts[(counts > 0).any(axis=1)]
        if hit.empty:
            continue
        row = hit.iloc[0]
        names = sorted((n for n in row.index if row[n] > 0),
                       key=lambda n: order.index(n) if n in order else len(order))
        culprit = owner.get(names[0])
        if kind == "gradients":
            # a NaN made in backward flows on to every layer before it: it starts at the last layer (in
            # forward order) whose gradient is bad, or past all of them (the loss or the model's own
            # code: a sqrt at 0) when every layer's gradient went bad at once
            with_grad = {n for n in row.index if math.isfinite(row[n])}
            culprit = "" if set(names) >= with_grad & set(owner) else owner.get(names[-1])
        candidates.append((int(hit.index[0]), rank, kind, culprit,
                           {"parameters": [{"name": n, "nonfinite_values": int(row[n])} for n in names][:20]}))
    loss = column(data.scalars, "loss").astype(float)
    if data.meta.get("loss_flags"):
        # the Probe marks a step whose loss was NaN/Inf (loss_nonfinite): a step with no loss at all (the
        # last one of a run closed between optimizer steps) is not one
        flags = column(data.scalars, "loss_nonfinite").astype(float)
        bad_loss = loss[flags.reindex(loss.index).fillna(0) > 0]
    else:
        # an older log: a step without a loss reads NaN too: trust a NaN loss only in a run that recorded a
        # finite loss at some step, or whose gradients or weights went non-finite as well
        trusted = np.isfinite(loss).any() or any(c[2] in ("gradients", "weights") for c in candidates)
        bad_loss = loss[~np.isfinite(loss)] if trusted else loss.iloc[:0]
    if not bad_loss.empty:
        candidates.append((int(bad_loss.index[0]), 1, "loss", None, {"loss": str(bad_loss.iloc[0])}))
    # an activation alone may be -inf on purpose (a masked score, a log-probability of 0): it matters, and
    # is reported, only when the loss, a gradient or a weight goes non-finite too
    if not any(kind != "activations" for _, _, kind, _, _ in candidates):
        return []
    step, _, kind, module, evidence = min(candidates, key=lambda c: (c[0], c[1]))
    also = sorted({c[2] for c in candidates if c[2] != kind})
    where = "the loss" if kind == "loss" else (f"module {module}" if module else "the model")
    return [Finding(
        code="nonfinite-values", severity="error",
        title=f"NaN/Inf first appears in the {kind} of {where} at step {step}",
        detail=(f"At step {step} the {kind} of {where} hold non-finite values"
                + (f"; the {', '.join(also)} follow" if also else "")
                + ". Once a NaN reaches the weights, every later step is wasted. Common causes: log or sqrt "
                  "of a value that can be 0 or negative, division by a std or norm that can be 0, exp "
                  "overflow, or a learning rate so high that the weights overflow."),
        module=module, location=module_location(tree, module) if module is not None else None,
        evidence={"step": step, "where": kind, **evidence, "also_nonfinite": also},
        fix=("Guard the operation that produced it (clamp the input of log/sqrt, add eps to denominators, "
             "use log_softmax / logsumexp); torch.autograd.set_detect_anomaly(True) names the backward op."))]


# -- mixed-devices ------------------------------------------------------------------------------------
def mixed_devices(data: RunData) -> list[Finding]:
    tree = data.tree
    if not tree:
        return []
    by_module: dict[str, dict[str, list[str]]] = {}
    for t in tree.get("tensors", []):
        if t.get("duplicate") or t.get("lazy"):
            continue
        by_module.setdefault(t["module"], {}).setdefault(t["device"], []).append(t["name"])
    # plain tensor attributes that .to() / .to_empty() left behind (the tree lists only those off their
    # module's device, with the line that assigns them)
    attributes: dict[str, list[dict]] = {}
    for a in tree.get("stray_tensors", []):
        attributes.setdefault(a["module"], []).append(a)
    found = []
    order = module_order(tree)
    for module in sorted(set(by_module) | set(attributes), key=lambda m: order.get(m, len(order))):
        devices = {d: list(names) for d, names in by_module.get(module, {}).items()}
        attrs = attributes.get(module, [])
        if len(devices) < 2 and not attrs:
            continue
        # the device most of the module lives on is "home" (the model's, for a module that holds only
        # attributes); name what is elsewhere
        home = max(devices, key=lambda d: (len(devices[d]), d)) if devices else attrs[0]["home"]
        for a in attrs:
            devices.setdefault(a["device"], []).append(a["name"])
        away = {d: names for d, names in sorted(devices.items()) if d != home}
        stray = [n for names in away.values() for n in names]
        owner = module or "the model"
        detail = (f"{_names(stray)} {'is' if len(stray) == 1 else 'are'} on {', '.join(away)} while the rest "
                  f"of {owner} is on {home}: forward fails with a device mismatch, or silently copies every "
                  f"step.")
        fix = ("Move the whole model once with model.to(device) after it is built (and after loading weights); "
               "create tensors in forward with device=x.device.")
        evidence = {"devices": {d: names[:20] for d, names in sorted(devices.items())}, "home": home}
        location = module_location(tree, module)
        if attrs:
            names = [a["attribute"] for a in attrs]
            one = len(attrs) == 1
            detail += (f" {_names(names)} {'is a plain tensor attribute' if one else 'are plain tensor attributes'}"
                       f" of {owner}, not {'a registered buffer' if one else 'registered buffers'}: model.to(), "
                       f".to_empty() and state_dict() do not see {'it' if one else 'them'}.")
            fix = (f"Register {'it' if one else 'each'} as a buffer: self.register_buffer('{names[0]}', tensor, "
                   f"persistent=False) instead of self.{names[0]} = tensor, so that .to() and .to_empty() move "
                   f"{'it' if one else 'them'} with the model (.to_empty() leaves a buffer's memory "
                   f"uninitialised: fill it again after).")
            evidence["attributes"] = [{k: a.get(k) for k in ("name", "device", "shape", "dtype", "location")}
                                      for a in attrs[:20]]
            location = next((a["location"] for a in attrs if a.get("location")), location)
        found.append(Finding(
            code="mixed-devices", severity="error",
            title=f"{module or 'The model'} has tensors on {', '.join(sorted({*devices, home}))}",
            detail=detail, module=module, location=location, evidence=evidence, fix=fix))
    return found
