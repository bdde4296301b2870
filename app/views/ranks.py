"""Ranks: a torch.distributed run's ranks side by side — step time (stragglers), data wait, memory — and
whether their parameters still agree (ranks-out-of-sync)."""
import streamlit as st

from app import figures, session, ui
from app.data import fmt_bytes
from app.summaries import MAIN_MEMORY, rank_table, straggler

run = session.current_run()
ui.header("Ranks", run)
if run is None:
    st.stop()
if not run.ranks:
    st.info("This run was written by one process. Under torch.distributed every rank writes its own log into "
            "the same run (a Probe on each rank), and this page overlays them: step time per rank (stragglers), "
            "data wait per rank, memory per rank, and a check that the ranks' parameters stay equal. Try "
            "`torchrun --nproc_per_node=2 sample_models/train_ddp.py`.")
    st.stop()

table = rank_table(run.ranks)
slow = straggler(table)
c1, c2, c3 = st.columns(3)
c1.metric("Ranks", f"{len(run.ranks)} of {run.meta.get('world_size', len(run.ranks))}",
          help="Logs found under this run / the world size rank 0 recorded.")
if slow:
    c2.metric("Slowest rank", f"rank {slow['rank']}", f"{slow['ratio']:.2f}x the fastest rank's step",
              delta_color="inverse" if slow["ratio"] > 1.1 else "off")
    c3.metric("Steps behind the furthest rank", f"{slow['behind_steps']:,}")
out_of_sync = [f for f in run.findings if f["code"] == "ranks-out-of-sync"]
for f in out_of_sync:
    st.error(f"**{ui.md(f['title'])}**\n\n{ui.md(f.get('fix'))}")
if not out_of_sync and not run.get("param_checksum").empty:
    st.success("The ranks' parameter checksums agree at every step compared.")

shown = table.copy().round({"median step (ms)": 2, "median data wait (ms)": 2})
shown["waiting for data"] = shown["waiting for data"].map(lambda v: "–" if v is None or v != v else f"{v:.0%}")
shown["peak memory"] = shown["peak memory"].map(fmt_bytes)
st.dataframe(shown, hide_index=True, width="stretch")

left, right = st.columns(2)
left.plotly_chart(figures.rank_figure(run.ranks, "step_time_s", title="Step time per rank", y_title="time (ms)",
                                      scale=1000.0), width="stretch", key="rank-step")
right.plotly_chart(figures.rank_figure(run.ranks, "data_wait_s", title="Data wait per rank", y_title="time (ms)",
                                       scale=1000.0), width="stretch", key="rank-wait")
memory = next((c for c in MAIN_MEMORY if any(c in s for s in run.ranks.values())), None)
if memory:
    st.plotly_chart(figures.rank_figure(run.ranks, memory, title=f"{figures.MEMORY_LABELS.get(memory, memory)} "
                                        f"per rank", y_title="memory (MiB)", scale=1 / (1 << 20)),
                    width="stretch", key="rank-memory")
