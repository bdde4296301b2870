"""Runs: every run in the run directory; open one, or compare two (before/after a fix)."""
import datetime as dt

import pandas as pd
import streamlit as st

from app import figures, paths, session, ui
from app.exports import export_buttons

st.header("Runs", anchor=False)
root = paths.run_root()
summaries = session.run_summaries()
if not summaries:
    st.info(f"No runs in {root} yet. Check a model from the sidebar, or add a Probe to a training script.")
    st.stop()

table = pd.DataFrame([{"run": s.name, "model": s.model, "status": s.status, "steps": s.steps,
                       "started": dt.datetime.fromtimestamp(s.started).strftime("%Y-%m-%d %H:%M:%S")
                       if s.started else None,
                       # a check's model file, or where a training script's model class is defined
                       "model file": paths.display_path(s.model_file) if s.model_file else s.location,
                       "error": s.error} for s in summaries])
st.caption(f"{len(summaries)} run(s) in {root}, newest first")
broken = [s for s in summaries if s.status == "unreadable"]
if broken:      # a damaged log is named, and the other runs stay usable
    st.warning(f"{len(broken)} run log(s) could not be read: " + "; ".join(ui.md(s.error) for s in broken))
st.dataframe(table, hide_index=True, width="stretch")

names = [s.name for s in summaries]
current = session.current_run_path()
index = names.index(current.name) if current is not None and current.name in names else 0


def _open():
    ss = st.session_state
    ss.run_path = ss.open_run
    chosen = next(s for s in summaries if s.name == ss.open_run)
    if chosen.model_file:
        ss.model_file = paths.display_path(chosen.model_file)
        ss._model_input = ss.model_file


st.selectbox("Run on screen", names, index=index, key="open_run", on_change=_open,
             help="The other pages show this run.")

st.subheader("Compare two runs")
c1, c2 = st.columns(2)
readable = [s.name for s in summaries if s.status != "unreadable"] or names     # compared by default
a = c1.selectbox("Before", names, index=names.index(readable[min(1, len(readable) - 1)]), key="compare_a")
b = c2.selectbox("After", names, index=names.index(readable[0]), key="compare_b")
if a == b:
    st.caption("Pick two different runs.")
else:
    views = {}
    for name in (a, b):
        views[name] = session.load_compare(name)
    fa, fb = views[a], views[b]
    if fa is not None and fb is not None:
        key = lambda f: (f["code"], f.get("module"), f.get("location"))  # noqa: E731
        before, after = {key(f): f for f in fa.findings}, {key(f): f for f in fb.findings}
        rows = [{"finding": f["code"], "module": f.get("module"), "title": f["title"],
                 "change": "fixed" if k not in after else "still there"} for k, f in before.items()]
        rows += [{"finding": f["code"], "module": f.get("module"), "title": f["title"], "change": "new"}
                 for k, f in after.items() if k not in before]
        m1, m2, m3 = st.columns(3)
        m1.metric("Fixed", sum(r["change"] == "fixed" for r in rows))
        m2.metric("Still there", sum(r["change"] == "still there" for r in rows))
        m3.metric("New", sum(r["change"] == "new" for r in rows))
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        else:
            st.success("Neither run has findings.")
        g1, g2 = st.columns(2)
        g1.plotly_chart(figures.compare_figure({a: fa.scalars, b: fb.scalars}, "loss", y_title="loss"),
                        width="stretch", key="compare-loss")
        with_ms = {n: v.scalars.assign(step_ms=v.scalars.get("step_time_s", pd.Series(dtype=float)) * 1000)
                   for n, v in ((a, fa), (b, fb))}
        g2.plotly_chart(figures.compare_figure(with_ms, "step_ms", y_title="step time (ms)"),
                        width="stretch", key="compare-time")

run = session.current_run()
if run is not None:
    st.divider()
    export_buttons(run)
