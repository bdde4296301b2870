"""Memory: CUDA allocated / reserved / peak per step, process RSS on CPU, with the growth slope."""
import streamlit as st

from app import figures, session, ui
from app.data import fmt_bytes
from app.summaries import memory_summary

run = session.current_run()
ui.header("Memory", run)
if run is None:
    st.stop()
numbers = memory_summary(run.scalars)
if numbers is None:
    st.info("This run recorded no memory (memory was off, or no step has run yet).")
    st.stop()

main, slope = numbers["column"], numbers["slope"]
c1, c2, c3 = st.columns(3)
c1.metric(f"{figures.MEMORY_LABELS.get(main, main)} now", fmt_bytes(numbers["now"]))
c2.metric("Peak", fmt_bytes(numbers["peak"]))
window = numbers["window"]
c3.metric("Growth per step", f"{fmt_bytes(slope)}/step" if slope is not None else "–",
          help=(f"Median slope over steps {window[0]}-{window[1]} (step 0 allocates once): the number the "
                f"memory-growth finding judges." if window else "Too few steps recorded yet."))
if main == "mem.rss_bytes":
    st.caption("On CPU this is the whole process's resident memory (RSS): only leaks of a few MiB per step "
               "stand out from the allocator's noise.")
st.plotly_chart(figures.memory_figure(run.scalars), width="stretch", key="memory")
growth = [f for f in run.findings if f["code"] == "memory-growth"]
for f in growth:
    st.warning(f"**{ui.md(f['title'])}** {ui.md(f.get('fix'))}")
