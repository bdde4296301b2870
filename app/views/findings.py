"""Findings (home): counts by severity, then one card per finding with its evidence and the fix."""
import streamlit as st

from app import figures, session, ui
from app.cards import finding_card
from app.data import severity_counts
from app.summaries import nonfinite_steps
from app.exports import export_buttons

run = session.current_run()
ui.header("Findings", run)
result = st.session_state.last_result
if result and result.get("error"):
    st.error(f"**The last check failed.** {ui.md(result['error'])}")
if run is None:
    st.stop()

counts = severity_counts(run.findings)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Errors", counts["error"])
c2.metric("Warnings", counts["warning"])
c3.metric("Info", counts["info"])
loss = run.scalars["loss"].dropna() if "loss" in run.scalars else None
c4.metric("Last loss", f"{loss.iloc[-1]:.4g}" if loss is not None and len(loss) else "–")
if run.meta.get("error"):
    st.error(f"**The run stopped with an error.** {ui.md(run.meta['error'])}")
if not run.findings:
    st.success(f"No problems found in {run.steps} steps.")

for i, f in enumerate(run.findings):
    finding_card(f, run, key=str(i))

st.subheader("Loss", anchor=False)
st.plotly_chart(figures.loss_figure(run.scalars, marks=nonfinite_steps(run)), width="stretch", key="loss")
st.divider()
export_buttons(run)
