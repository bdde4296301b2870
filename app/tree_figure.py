"""The registration tree's figure: an icicle of the model's modules, sized by parameters and coloured by device,
optimizer membership or dtype. Pure functions (no streamlit, no run log access), like app/figures.py.
"""
from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.summaries import layer_of
from app.figures import DEVICE_COLOURS, GREEN, GREY, ORANGE, RED, empty_figure

def tree_frame(tree: dict[str, Any], colour_by: str = "device") -> pd.DataFrame:
    """One row per module (and per unregistered attribute): id, parent, label, size, colour key, hover."""
    tensors = tree.get("tensors", [])
    own: dict[str, list[dict]] = {}
    for t in tensors:
        own.setdefault(t["module"], []).append(t)
    rows = []
    for m in tree.get("modules", []):
        path = m["path"]
        mine = own.get(path, [])
        rows.append({"id": path or "(model)", "parent": (layer_of(path) or "(model)") if path else "",
                     "label": (path.rsplit(".", 1)[-1] if path else m["class"]) + f" · {m['label']}",
                     "own": sum(t.get("numel", 0) for t in mine if not t.get("duplicate")),
                     "key": _colour_key(m, mine, colour_by), "class": m["class"],
                     "location": m.get("location") or "", "registered": True})
    for u in tree.get("unregistered", []):
        parent = u["module"] or "(model)"
        rows.append({"id": f"{parent}/{u['attribute']} (unregistered)", "parent": parent,
                     "label": f"{u['attribute']} · UNREGISTERED {u['container']} of {u['kind']}s",
                     "own": max(int(u.get("numel") or 0), 1), "key": "unregistered", "class": u["container"],
                     "location": u.get("location") or "", "registered": False})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # total = own + descendants (branchvalues="total" needs parents at least as large as their children)
    # every node counts 1 besides its parameters, so containers without tensors still get a visible block
    own = dict(zip(frame["id"], frame["own"].astype(float) + 1.0))
    parent_of = dict(zip(frame["id"], frame["parent"]))
    totals = dict(own)
    params = dict(zip(frame["id"], frame["own"].astype(float).where(frame["registered"], 0.0)))
    real = dict(params)
    for node_id, value in own.items():
        seen, parent = {node_id}, parent_of.get(node_id)
        while parent and parent in totals and parent not in seen:
            totals[parent] += value
            real[parent] += params[node_id]
            seen.add(parent)
            parent = parent_of.get(parent)
    frame["size"] = frame["id"].map(totals)
    frame["params"] = frame["id"].map(real).astype("int64")
    return frame


def _colour_key(module: dict, tensors: list[dict], colour_by: str) -> str:
    if not tensors:
        return "no own tensors"
    if colour_by == "trainable":
        flags = {bool(t.get("requires_grad")) for t in tensors if t["kind"] == "parameter"}
        return "no parameters" if not flags else ("trainable" if flags == {True} else
                                                  "frozen" if flags == {False} else "partly frozen")
    if colour_by == "in optimizer":
        params = [t for t in tensors if t["kind"] == "parameter" and t.get("requires_grad")]
        if not params:
            return "no trainable parameters"
        inside = {t.get("optimizer") is not None for t in params}
        return "in optimizer" if inside == {True} else "NOT in optimizer" if inside == {False} else "partly"
    devices = sorted({t.get("device") or "?" for t in tensors})
    return " + ".join(devices)


KEY_COLOURS = {"unregistered": RED, "NOT in optimizer": RED, "partly": ORANGE, "partly frozen": ORANGE,
               "frozen": GREY, "trainable": GREEN, "in optimizer": GREEN, "no own tensors": "#c9cbd4",
               "no parameters": "#c9cbd4", "no trainable parameters": "#c9cbd4"}


# The browser's cost of an icicle grows with every node sent, drawn or not (about 0.3 s per 1,000 nodes in
# plotly.js alone, more inside Streamlit): past this many nodes only the levels on screen are sent, and
# deeper ones are reached by focusing on a module. Below it, everything goes and clicking zooms to any depth.
TREE_NODES_SENT = 600


def default_tree_depth(tree: dict[str, Any] | None, lowest: int = 2, highest: int = 4) -> int:
    """The deepest icicle depth (levels, the root counting 1) that draws at most TREE_NODES_SENT blocks."""
    counts: dict[int, int] = {}
    for m in (tree or {}).get("modules", []):
        level = m["path"].count(".") + 2 if m["path"] else 1
        counts[level] = counts.get(level, 0) + 1
    depth, shown = lowest, sum(n for level, n in counts.items() if level <= lowest)
    while depth < highest and shown + counts.get(depth + 1, 0) <= TREE_NODES_SENT:
        depth += 1
        shown += counts.get(depth, 0)
    return depth


def focus_choices(tree: dict[str, Any] | None) -> list[str]:
    """Modules worth focusing the icicle on: the model ('') and every module that has children."""
    return [m["path"] for m in (tree or {}).get("modules", []) if not m["path"] or m.get("children")]


def _subtree(frame: pd.DataFrame, root: str, max_depth: int) -> pd.DataFrame:
    """The rows under `root` (its id; '' for the model), cut to max_depth levels when the subtree is large;
    the root's own row becomes the top (parent '')."""
    root_id = root or "(model)"
    parent_of = dict(zip(frame["id"], frame["parent"]))
    memo: dict[str, int | None] = {root_id: 0}      # levels below the root; None: not under it

    def level(node: str) -> int | None:
        chain = []
        while node not in memo and node and len(chain) <= len(parent_of):
            chain.append(node)
            node = parent_of.get(node, "")
        base = memo.get(node)
        for i, n in enumerate(reversed(chain), 1):
            memo[n] = None if base is None else base + i
        return memo[chain[0]] if chain else base

    levels = frame["id"].map(level)
    keep = levels.notna()
    if keep.sum() > TREE_NODES_SENT:
        keep &= levels < max_depth
    out = frame[keep].copy()
    out.loc[out["id"] == root_id, "parent"] = ""
    return out


def tree_figure(tree: dict[str, Any] | None, colour_by: str = "device", *, max_depth: int = 4, root: str = "",
                height: int = 520) -> go.Figure:
    """The module hierarchy as an icicle sized by parameter count; unregistered attributes in red.

    `root` focuses on one module's subtree. A large tree is sent only to max_depth levels (TREE_NODES_SENT)."""
    if not tree or not tree.get("modules"):
        return empty_figure("No registration tree recorded in this run")
    frame = tree_frame(tree, colour_by)
    if root and root not in set(frame["id"]):
        root = ""
    frame = _subtree(frame, root, max_depth)
    keys = list(dict.fromkeys(frame["key"]))
    palette = {}
    others = iter(DEVICE_COLOURS * 4)
    for k in keys:
        palette[k] = KEY_COLOURS.get(k) or next(others)
    colours = [palette[k] for k in frame["key"]]
    e = html.escape     # module, class and file names come from the user's code: plotly renders tags in text
    hover = [f"{e(i)}<br>{e(c)}<br>{n:,} parameters<br>{e(k)}" + (f"<br>{e(loc)}" if loc else "")
             for i, c, n, k, loc in zip(frame["id"], frame["class"], frame["params"], frame["key"], frame["location"])]
    fig = go.Figure(go.Icicle(ids=frame["id"], parents=frame["parent"], labels=[e(x) for x in frame["label"]],
                              values=frame["size"], branchvalues="total", marker=dict(colors=colours),
                              hovertext=hover, hoverinfo="text", maxdepth=max_depth,
                              tiling=dict(orientation="v"), root=dict(color="rgba(0,0,0,0)")))
    # the colour key, as coloured squares in the title line (an icicle has no legend of its own)
    key_text = "  ".join(f"<span style='color:{palette[k]}'>■</span> {html.escape(k)}" for k in keys)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60, b=10),
                      title=dict(text=f"Modules sized by parameter count (click a block to zoom)<br>"
                                      f"<sup>{html.escape(colour_by)}: {key_text}</sup>"))
    return fig
