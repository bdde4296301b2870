"""Ranks: a torch.distributed run's ranks side by side — step time (stragglers), data wait, memory — and
whether their parameters still agree (ranks-out-of-sync). Up to figures.MAX_RANK_LINES ranks a line and a
row each; more, the spread across ranks as a band with only the ranks out of line named."""
import weakref

import streamlit as st

from app import figures, session, ui
from app.data import fmt_bytes
from app.summaries import MAIN_MEMORY, rank_notes, rank_spread, rank_table, straggler
from probes.stats import OUTLIER_FLOOR, OUTLIER_Z

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

many = len(run.ranks) > figures.MAX_RANK_LINES
across = "across ranks" if many else "per rank"
MEMORY = next((c for c in MAIN_MEMORY if any(c in s for s in run.ranks.values())), None)


def summarise(run):
    """The page's numbers and charts, once per RunView (a new one comes with every change of the logs):
    coming back to the page costs their drawing only, not 64 ranks' medians and bands again."""
    cached = st.session_state.get("_ranks_page")
    if cached is not None and cached[0]() is run:
        return cached[1]
    spread = rank_spread(run.ranks)
    table = rank_table(run.ranks, spread)
    notes = rank_notes(spread, table)
    charts = [figures.rank_figure(run.ranks, "step_time_s", title=f"Step time {across} (step 0 left out)",
                                  y_title="time (ms)", scale=1000.0, named=notes["step"], skip=1),
              figures.rank_figure(run.ranks, "data_wait_s", title=f"Data wait {across} (step 0 left out)",
                                  y_title="time (ms)", scale=1000.0, named=notes["wait"], skip=1)]
    if MEMORY:
        charts.append(figures.rank_figure(run.ranks, MEMORY, title=f"{figures.MEMORY_LABELS.get(MEMORY, MEMORY)} "
                                          f"{across}", y_title="memory (MiB)", scale=1 / (1 << 20),
                                          named=notes["memory"]))
    st.session_state["_ranks_page"] = (weakref.ref(run), (spread, table, notes, charts))
    return spread, table, notes, charts


spread, table, notes, charts = summarise(run)
slow = straggler(table)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Ranks", f"{len(run.ranks)} of {run.meta.get('world_size', len(run.ranks))}",
          help="Logs found under this run / the world size rank 0 recorded.")
if slow:
    c2.metric("Slowest rank", f"rank {slow['rank']}", f"{slow['ratio']:.2f}x the fastest rank's step",
              delta_color="inverse" if slow["ratio"] > 1.1 else "off")
    c4.metric("Steps behind the furthest rank", f"{slow['behind_steps']:,}")
RULE = (f"a median step more than {OUTLIER_Z:g} robust standard deviations (1.4826 x the median absolute "
        f"deviation across ranks, at least {OUTLIER_FLOOR:.0%} of the median rank's step) above the median "
        f"rank's")
if len(run.ranks) >= 3:
    c3.metric("Stragglers", f"{len(spread.stragglers)} of {len(run.ranks)}", help=f"Ranks with {RULE}.")
    named = [f"rank {o.rank} {o.ratio:.2f}x" for o in spread.stragglers[:8]]
    more = f" and {len(spread.stragglers) - 8} more" if len(spread.stragglers) > 8 else ""
    shares = {t.rank: t.wait_share for t in spread.timings}
    waits = [f"rank {o.rank} waits {o.value * 1000:.3g} ms" + ("" if shares[o.rank] is None else
                                                             f", {shares[o.rank]:.0%} of its step")
             for o in spread.waiting[:8]]
    typical = f"{spread.median_step_s * 1000:.3g} ms" if spread.median_step_s else "–"
    if named or waits:
        lines = []
        if named:
            lines.append(f"**Stragglers** against the median rank's step ({typical}): {', '.join(named)}{more}.")
        if waits:
            wait = f"{spread.median_wait_s * 1000:.3g} ms" if spread.median_wait_s is not None else "–"
            lines.append(f"**Waiting for data** longer than the others (the median rank waits {wait} a step): "
                         f"{', '.join(waits)}.")
        st.warning("\n\n".join(lines))
    elif spread.median_step_s:
        st.success(f"No straggler: no rank has {RULE} ({typical}).")
out_of_sync = [f for f in run.findings if f["code"] == "ranks-out-of-sync"]
for f in out_of_sync:
    st.error(f"**{ui.md(f['title'])}**\n\n{ui.md(f.get('fix'))}")
if not out_of_sync and not run.get("param_checksum").empty:
    st.success("The ranks' parameter checksums agree at every step compared.")


def shown(frame):
    out = frame.copy().round({"median step (ms)": 2, "median data wait (ms)": 2})
    out["vs median rank"] = out["vs median rank"].map(lambda v: "–" if v is None or v != v else f"{v:.2f}x")
    out["waiting for data"] = out["waiting for data"].map(lambda v: "–" if v is None or v != v else f"{v:.0%}")
    out["peak memory"] = out["peak memory"].map(fmt_bytes)
    return out


if many:
    picked = list(dict.fromkeys([*spread.named, *notes["memory"]]))
    if picked:
        st.dataframe(shown(table[table["rank"].isin(picked)]), hide_index=True, width="stretch")
    with st.expander(f"All {len(table)} ranks"):
        st.dataframe(shown(table), hide_index=True, width="stretch")
else:
    st.dataframe(shown(table), hide_index=True, width="stretch")

# a band and its named ranks need the width for a legend of one or two rows; a few ranks' lines sit side by side
left, right = (st.container(), st.container()) if many else st.columns(2)
left.plotly_chart(charts[0], width="stretch", key="rank-step")
right.plotly_chart(charts[1], width="stretch", key="rank-wait")
if MEMORY:
    st.plotly_chart(charts[2], width="stretch", key="rank-memory")
