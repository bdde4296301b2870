"""Gradients: layer x step heatmap of gradient norms, per-layer lines, non-finite steps marked."""
import streamlit as st

from app import figures, session, ui
from app.summaries import nonfinite_steps, per_layer_norm

run = session.current_run()
ui.header("Gradients", run)
if run is None:
    st.stop()
grad = run.get("grad_norm")
if grad.empty:
    st.info("This run recorded no gradient norms (grad_norm was off, or no step has run yet).")
    st.stop()

bad = nonfinite_steps(run)
if bad:
    st.error(f"NaN/Inf at step(s) {', '.join(map(str, bad[:20]))}{' …' if len(bad) > 20 else ''} "
             "(dotted red lines).")
st.plotly_chart(figures.grad_heatmap(grad, bad), width="stretch", key="grad-heatmap")

layers = per_layer_norm(grad)
default = figures.top_columns(layers.dropna(axis=1, how="all"), 8)
chosen = st.multiselect("Layers", list(layers.columns), default=default, key="grad_layers",
                        help="Defaults to the 8 layers with the largest median gradient norm.")
st.plotly_chart(figures.layer_lines(layers, chosen, title="Gradient norm per layer",
                                    y_title="‖grad‖ (L2 norm, log)", marks=bad), width="stretch", key="grad-lines")
