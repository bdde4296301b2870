"""Checkpoint doctor: does a checkpoint load into the model file's model, and if not, exactly why.

The same check as `python -m probes checkpoint MODEL_FILE CHECKPOINT`: a worker subprocess builds the model
and reads the file with torch.load(weights_only=True) only. The dashboard takes a path, never an upload, and
never reads the checkpoint itself.
"""
from pathlib import Path

import streamlit as st

from app import paths
from app.cards import finding_card
from app.jobs import DOCTOR, cannot_run
from app.ui import md
from probes.textreport import checkpoint_contents

ss = st.session_state
st.header("Checkpoint doctor", anchor=False)
st.caption(f"Does a checkpoint load into the model of **{md(ss.model_file)}** (the model file in the "
           "sidebar)? A worker process builds the model and reads the checkpoint with "
           "`torch.load(weights_only=True)`: a file that needs pickled code to load is refused, never run.")

found = paths.checkpoint_files(ss.model_file)
if "_ckpt_input" not in ss:
    ss._ckpt_input = found[0] if found else ""


def _on_pick() -> None:
    if ss._ckpt_pick:
        ss._ckpt_input = ss._ckpt_pick


left, right = st.columns([3, 2], vertical_alignment="bottom")
left.text_input("Checkpoint file", key="_ckpt_input", placeholder="checkpoints/model.pt",
                help="Path of a file saved with torch.save (relative to where the dashboard started).")
right.selectbox("…or one found near the model", [""] + found, key="_ckpt_pick", on_change=_on_pick,
                format_func=lambda p: p or ("pick a checkpoint" if found else "no .pt/.pth/.ckpt files found"))
path = paths.typed_path(ss._ckpt_input)
problem = cannot_run(ss.model_file) or paths.checkpoint_problem(path)
if problem and path:
    st.error(problem)

b1, b2, _ = st.columns([1, 1, 3])
if b1.button("Check checkpoint", type="primary", disabled=bool(problem) or DOCTOR.running, key="ckpt_check"):
    DOCTOR.start(ss.model_file, device="cpu", checkpoint=path)
    ss.ckpt_for = paths.checkpoint_key(ss.model_file, path)
    st.rerun()
b2.button("Cancel", disabled=not DOCTOR.running, key="ckpt_cancel", on_click=DOCTOR.cancel)


@st.fragment(run_every=0.5 if DOCTOR.running else None)
def _progress() -> None:
    """The job's lifecycle is the sidebar check's (app/jobs.py): polled here until it is over."""
    DOCTOR.show_progress(lambda job: (0.5, f"Building {Path(ss.model_file).name} and reading the checkpoint…"))


_progress()
result = ss.get("ckpt_result")
if result is None or DOCTOR.running:
    st.stop()
if ss.get("ckpt_for") != paths.checkpoint_key(ss.model_file, path):
    st.info("The model file, the checkpoint or its contents changed since the last check: press "
            "**Check checkpoint** again.")
    st.stop()
if result.get("error"):
    st.error(f"**The check failed.** {md(result['error'])}")
held = result.get("checkpoint")
if held is not None:
    st.markdown(f"**{md(Path(path).name)}** holds {md(checkpoint_contents(held))}.")
findings = result.get("findings") or []
if not findings and not result.get("error"):
    under = f"[{held['found_under']!r}]" if held and held.get("found_under") else ""
    st.success(f"The checkpoint loads into {md(result.get('model') or 'the model')}: every key, shape and "
               f"dtype matches, so `model.load_state_dict(torch.load(path, weights_only=True){under})` works "
               "as it is (strict).")
for i, f in enumerate(findings):
    finding_card(f, None, key=f"ckpt-{i}")
