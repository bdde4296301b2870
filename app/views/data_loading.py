"""Data loading: time waiting for the next batch vs compute, the stall share, the loader and the advice."""
import pandas as pd
import streamlit as st

from app import figures, session, ui
from app.summaries import data_loading_summary
from probes.stats import loader_workers

run = session.current_run()
ui.header("Data loading", run)
if run is None:
    st.stop()
scalars = run.scalars
numbers = data_loading_summary(scalars, loader_workers(run.meta))
share = numbers["share"]
c1, c2, c3 = st.columns(3)
c1.metric("Waiting for data", f"{share:.0%} of each step" if share is not None else "–",
          help="The median wait against the model's own compute per step (its lower quartile: a busy machine "
               "only adds to it), leaving out the loader's start-up (one step per worker): the number the "
               "dataloader-stall finding judges.")
if numbers["median_wait_s"] is not None:
    c2.metric("Median wait", f"{numbers['median_wait_s'] * 1000:.2f} ms")
if numbers["median_step_s"] is not None:
    c3.metric("Median step", f"{numbers['median_step_s'] * 1000:.2f} ms")
st.plotly_chart(figures.data_loading_figure(scalars), width="stretch", key="data-loading")

loader = run.meta.get("loader")
if loader:
    st.subheader("Loader settings")
    st.dataframe(pd.DataFrame([{"setting": k, "value": str(v)} for k, v in loader.items()]), hide_index=True)
else:
    st.caption("No DataLoader settings recorded (wrap the loader with probe.wrap(loader) to record them).")
stalls = [f for f in run.findings if f["code"] == "dataloader-stall"]
if stalls:
    for f in stalls:
        st.warning(f"**{ui.md(f['title'])}**\n\n{ui.md(f.get('fix'))}")
elif share is not None:
    st.success("The loop is not waiting on data.")
