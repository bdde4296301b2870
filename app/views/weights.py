"""Weights: how much each layer's weights change per step, against the usual ~1e-3 update ratio."""
import streamlit as st

from app import figures, session, ui
from app.summaries import update_summary, weight_matrices

run = session.current_run()
ui.header("Weights", run)
if run is None:
    st.stop()
ratio, norm = run.get("update_ratio"), run.get("update_norm")
if ratio.empty:
    st.info("This run recorded no weight updates (update_size was off, or no step has run yet).")
    st.stop()

st.caption("‖ΔW‖/‖W‖ per optimizer step. Weight matrices usually sit near 1e-3 (shaded band): far above, the "
           "learning rate is too high; far below, the weights barely move.")
weights_only = st.toggle("Weight matrices only", value=True, key="weights_only",
                         help="Biases and normalisation scales move differently; the guide is for weight matrices.")
shown = weight_matrices(ratio, run.tree) if weights_only else ratio
st.plotly_chart(figures.update_ratio_figure(shown), width="stretch", key="update-ratio")
st.plotly_chart(figures.update_norm_figure(weight_matrices(norm, run.tree) if weights_only else norm),
                width="stretch", key="update-norm")
st.dataframe(update_summary(shown, norm), width="stretch",
             column_config={"median ratio": st.column_config.NumberColumn(format="%.2e"),
                            "last ratio": st.column_config.NumberColumn(format="%.2e")})
