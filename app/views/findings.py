"""Findings (home): counts by severity, then one card per finding with its evidence and the fix."""
import streamlit as st

from app import figures, state
from app.data import nonfinite_steps, severity_counts
from app.evidence import evidence_chart, evidence_tables
from app.exports import export_buttons

SEVERITY_LABEL = {"error": ":red-badge[ERROR]", "warning": ":orange-badge[WARNING]", "info": ":blue-badge[INFO]"}

run = state.current_run()
state.header("Findings", run)
result = st.session_state.last_result
if result and result.get("error"):
    st.error(f"**The last check failed.** {state.md(result['error'])}")
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
    st.error(f"**The run stopped with an error.** {state.md(run.meta['error'])}")
if not run.findings:
    st.success(f"No problems found in {run.steps} steps.")

for i, f in enumerate(run.findings):
    with st.container(border=True):
        st.markdown(f"{SEVERITY_LABEL.get(f['severity'], f['severity'])} `{f['code']}` **{state.md(f['title'])}**")
        where = []
        if f.get("module") is not None:
            where.append(f"module `{f['module'] or '(the model itself)'}`")
        if f.get("location"):
            where.append(f"at `{f['location']}`")
        if where:
            st.caption(" · ".join(where))
        st.write(state.md(f.get("detail")))
        plain, tables = evidence_tables(f.get("evidence") or {})
        chart = evidence_chart(f, run)
        left, right = st.columns([1, 1]) if chart is not None and tables else (st.container(), None)
        with left:
            if len(plain):
                st.markdown(" · ".join(f"{state.md(r.evidence)}: **{state.md(r.value)}**"
                                       for r in plain.itertuples()))
            for name, table in tables:
                st.caption(name.replace("_", " "))
                st.dataframe(table, hide_index=True, width="stretch", height=min(36 * len(table) + 38, 260))
            if chart is not None and right is None:
                st.plotly_chart(chart, width="stretch", key=f"evidence-{i}")
        if right is not None:
            with right:
                st.plotly_chart(chart, width="stretch", key=f"evidence-{i}")
        if f.get("fix"):
            st.markdown(f":material/build: **Fix:** {state.md(f['fix'])}")

st.subheader("Loss", anchor=False)
st.plotly_chart(figures.loss_figure(run.scalars, marks=nonfinite_steps(run)), width="stretch", key="loss")
st.divider()
export_buttons(run)
