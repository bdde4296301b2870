"""Registration tree: what PyTorch sees of the model — modules, parameters, buffers — and what it misses."""
import streamlit as st

from app import session, tree_figure, ui
from app.tables import default_module_depth, module_table, tensor_table, tree_counts

run = session.current_run()
ui.header("Registration tree", run)
if run is None:
    st.stop()
tree = run.tree
if not tree:
    st.warning("This run recorded no registration tree.")
    st.stop()

counts = tree_counts(tree)
table = tensor_table(tree)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Modules", f"{counts['modules']:,}")
c2.metric("Parameters", f"{counts['parameters']:,}")
c3.metric("Trainable, not in optimizer", counts["not_in_optimizer"])
c4.metric("Unregistered", counts["unregistered"])

for u in tree.get("unregistered", []):
    st.error(f"**{ui.md(u['attribute'])}** on `{u['module'] or '(model)'}` is a plain "
             f"{ui.md(u['container'])} of {u['count']} {u['kind']}(s), {u.get('numel', 0):,} values PyTorch "
             f"does not see"
             + (f" — `{u['location']}`" if u.get("location") else ""))
for b in tree.get("uninitialised", []):
    st.error(f"`{b.get('path') or '(model)'}` ({ui.md(b.get('class'))}) never ran nn.Module.__init__"
             + (f" — `{b['location']}`" if b.get("location") else ""))

left, right = st.columns([3, 2])
icicle, listing = left.tabs(["Icicle", "Table"])
with icicle:
    colour_by = st.radio("Colour by", ["device", "trainable", "in optimizer"], horizontal=True, key="tree_colour")
    o1, o2 = st.columns([3, 2])
    root = o1.selectbox("Focus on", tree_figure.focus_choices(tree), format_func=lambda p: p or "(the whole model)",
                        key="tree_root", help="Show one module's subtree (type to search).")
    depth = o2.slider("Levels shown", 2, 8, tree_figure.default_tree_depth(tree), key="tree_depth",
                      help="Click a block to zoom into it. Large models start with fewer levels: thousands of "
                           "blocks at once are slow to draw and too small to read.")
    st.plotly_chart(tree_figure.tree_figure(tree, colour_by, max_depth=depth, root=root or ""), width="stretch",
                    key="tree-figure")
with listing:
    modules = module_table(tree)
    if modules.empty:
        st.info("This tree lists no modules.")
    else:
        deepest = int(modules["depth"].max())
        per_level = {int(d): int(n) for d, n in
                     modules["depth"].value_counts().reindex(range(deepest + 1), fill_value=0).cumsum().items()}
        levels = list(per_level)
        level = st.selectbox("Expand to level", levels, index=levels.index(default_module_depth(modules)),
                             format_func=lambda d: f"{d} ({per_level[d]:,} modules)" if d else "0 (the model only)",
                             key="tree_table_depth",
                             help="Modules down to this depth (the model is level 0). A module's counts include "
                                  "every module below it, shown or not; a tied weight counts once.")
        shown_modules = modules[modules["depth"] <= level]
        st.caption(f"{len(shown_modules):,} of {len(modules):,} modules")
        count = st.column_config.NumberColumn(format="localized")
        st.dataframe(shown_modules, hide_index=True, width="stretch", height=min(35 * len(shown_modules) + 38, 480),
                     column_order=["module", "class", "parameters", "trainable", "in optimizer", "device", "dtype"],
                     column_config={"parameters": count, "trainable": count, "in optimizer": count})
with right:
    query = st.text_input("Filter tensors", key="tree_filter", placeholder="name or module contains…")
    only = st.multiselect("Show only", ["trainable", "frozen", "not in optimizer", "unregistered", "buffers"],
                          key="tree_only")
    shown = table
    if query:
        mask = shown["name"].str.contains(query, case=False, regex=False) | \
            shown["module"].astype(str).str.contains(query, case=False, regex=False)
        shown = shown[mask]
    if "trainable" in only:
        shown = shown[shown["trainable"]]
    if "frozen" in only:
        shown = shown[~shown["trainable"] & (shown["kind"] == "parameter")]
    if "not in optimizer" in only:
        shown = shown[shown["trainable"] & ~shown["in_optimizer"]]
    if "unregistered" in only:
        shown = shown[~shown["registered"]]
    if "buffers" in only:
        shown = shown[shown["kind"] == "buffer"]
    st.caption(f"{len(shown):,} of {len(table):,} tensors")
    view = shown.drop(columns=["registered"])
    unregistered = ~shown["registered"].to_numpy()
    if unregistered.any() and len(shown) <= 2000:   # unregistered rows in red (styling is slow on huge tables)
        red = {i for i, bad in zip(view.index, unregistered) if bad}
        view = view.style.apply(lambda row: ["color: #e5484d; font-weight: 600" if row.name in red else ""] * len(row),
                                axis=1)
    st.dataframe(view, hide_index=True, width="stretch", height=480,
                 column_config={"numel": st.column_config.NumberColumn("numel", format="%d")})
