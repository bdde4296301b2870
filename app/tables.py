"""The registration tree as tables: the page's counts, one row per tensor, one row per module (torchinfo's
summary). Plain data in, frames out (no streamlit, no torch)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def tree_counts(tree: dict[str, Any] | None) -> dict[str, int]:
    """The Registration tree page's numbers: modules, registered parameter values, trainable parameters
    in no optimizer, unregistered attributes (and modules that never ran nn.Module.__init__)."""
    tree = tree or {}
    params = [t for t in tree.get("tensors", []) if t["kind"] == "parameter" and not t.get("duplicate")]
    return {"modules": len(tree.get("modules", [])),
            "parameters": sum(int(t.get("numel") or 0) for t in params),
            "not_in_optimizer": sum(1 for t in params if t.get("requires_grad") and t.get("optimizer") is None),
            "unregistered": len(tree.get("unregistered", [])) + len(tree.get("uninitialised", []))}


def tensor_table(tree: dict[str, Any] | None) -> pd.DataFrame:
    """Parameters and buffers, plus unregistered tensors, one row each."""
    columns = ["name", "module", "kind", "shape", "dtype", "device", "numel", "trainable", "in_optimizer",
               "shared_with", "registered"]
    if not tree:
        return pd.DataFrame(columns=columns)
    rows = []
    for t in tree.get("tensors", []):
        rows.append({"name": t["name"], "module": t["module"], "kind": t["kind"],
                     "shape": "×".join(str(d) for d in t.get("shape") or []) or "scalar",
                     "dtype": t.get("dtype"), "device": t.get("device"), "numel": t.get("numel", 0),
                     "trainable": bool(t.get("requires_grad")), "in_optimizer": t.get("optimizer") is not None,
                     "shared_with": ", ".join(t.get("shared_with") or []), "registered": True})
    for u in tree.get("unregistered", []):
        rows.append({"name": u["path"], "module": u["module"], "kind": f"unregistered {u['kind']}",
                     "shape": u.get("container", ""), "dtype": None, "device": u.get("device"),
                     "numel": u.get("numel", 0), "trainable": u["kind"] != "module" or bool(u.get("numel")),
                     "in_optimizer": False, "shared_with": "", "registered": False})
    return pd.DataFrame(rows, columns=columns)


# one level of indentation in the module table: non-breaking spaces survive the table's rendering
_INDENT = "\u00a0" * 3


def module_table(tree: dict[str, Any] | None, max_depth: int | None = None) -> pd.DataFrame:
    """The modules in tree order, one row each, as torchinfo's summary lists them: the dotted path indented
    by depth (the root is "(model)", depth 0), class, parameter values owned by the module and its children
    (all, trainable, held by an optimizer) and the dtypes and devices of the module's own tensors.

    A tied weight (one tensor under several names) counts once in every subtree holding any of its names.
    One pass over the modules and one over the tensors; `max_depth` keeps the modules of depth <= max_depth."""
    columns = ["module", "path", "depth", "class", "parameters", "trainable", "in optimizer", "device", "dtype"]
    modules = (tree or {}).get("modules") or []
    if not modules:
        return pd.DataFrame(columns=columns)
    paths = [m["path"] for m in modules]
    index = {p: i for i, p in enumerate(paths)}
    n = len(modules)
    parent, depth = [-1] * n, [0] * n
    for i, path in enumerate(paths):
        if not path:
            continue
        depth[i] = path.count(".") + 1
        up = path
        while up:                       # the nearest listed ancestor (normally the path one dot up)
            up = up.rpartition(".")[0]
            j = index.get(up)
            if j is not None and j != i:
                parent[i] = j
                break
    totals = np.zeros((n, 3), dtype=np.int64)           # parameters, trainable, in optimizer
    devices: list[set] = [set() for _ in range(n)]
    dtypes: list[set] = [set() for _ in range(n)]
    owner: dict[str, int] = {}                          # parameter name -> its module's row
    duplicates = []
    for t in (tree or {}).get("tensors", []):
        i = index.get(t.get("module"))
        if i is None:
            continue
        if t.get("device"):
            devices[i].add(str(t["device"]))
        if t.get("dtype"):
            dtypes[i].add(str(t["dtype"]))
        if t.get("kind") != "parameter":
            continue
        owner[t["name"]] = i
        if t.get("duplicate"):
            duplicates.append(t)
        else:
            totals[i] += _tensor_counts(t)
    for i in sorted(range(n), key=depth.__getitem__, reverse=True):     # children before parents: sums go up
        if parent[i] >= 0:
            totals[parent[i]] += totals[i]
    # a tied weight's other names: counted in the modules above them that no earlier name already reached
    second = {t["name"] for t in duplicates}
    covered: dict[frozenset, set[int]] = {}             # per tensor: the rows that count it already
    for t in duplicates:
        group = frozenset([t["name"], *(t.get("shared_with") or [])])
        reached = covered.get(group)
        if reached is None:
            reached = covered[group] = set()
            for name in group - second:                 # its first name, counted in the sums above
                j = owner.get(name, -1)
                while j >= 0 and j not in reached:
                    reached.add(j)
                    j = parent[j]
        if not reached:                 # its first name is not in the tree: counted nowhere (as in tree_counts)
            continue
        counts, j = _tensor_counts(t), index[t["module"]]
        while j >= 0 and j not in reached:
            totals[j] += counts
            reached.add(j)
            j = parent[j]
    frame = pd.DataFrame({
        "module": [_INDENT * (d - 1) + "└ " + p if p else "(model)" for p, d in zip(paths, depth)],
        "path": paths, "depth": depth, "class": [m.get("class") for m in modules],
        "parameters": totals[:, 0], "trainable": totals[:, 1], "in optimizer": totals[:, 2],
        "device": [", ".join(sorted(s)) for s in devices], "dtype": [", ".join(sorted(s)) for s in dtypes]},
        columns=columns)
    if max_depth is not None:
        frame = frame[frame["depth"] <= max_depth].reset_index(drop=True)
    return frame


def _tensor_counts(t: dict[str, Any]) -> np.ndarray:
    numel = int(t.get("numel") or 0)
    return np.array([numel, numel if t.get("requires_grad") else 0,
                     numel if t.get("optimizer") is not None else 0], dtype=np.int64)


def default_module_depth(table: pd.DataFrame, rows: int = 200) -> int:
    """The level the module table opens at: the deepest that lists at most `rows` modules, at least 2
    (every level of a small model)."""
    if table.empty:
        return 0
    per_level = table["depth"].value_counts().sort_index().cumsum()
    fits = [int(level) for level, shown in per_level.items() if shown <= rows]
    return max(fits + [min(2, int(table["depth"].max()))])
