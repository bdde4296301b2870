"""One finding drawn as a card: severity, title, where, what was seen (its evidence) and the fix.

Shared by the Findings page (a run's findings) and the Checkpoint page (the checkpoint doctor's).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import streamlit as st

from app.data import RunView
from app.source import excerpt_text
from app.evidence import evidence_chart, evidence_tables
from app.ui import md

SEVERITY_LABEL = {"error": ":red-badge[ERROR]", "warning": ":orange-badge[WARNING]", "info": ":blue-badge[INFO]"}


def finding_card(f: dict[str, Any], run: RunView | None, key: str) -> None:
    with st.container(border=True):
        st.markdown(f"{SEVERITY_LABEL.get(f['severity'], md(f['severity']))} `{f['code']}` **{md(f['title'])}**")
        where = []
        if f.get("module") is not None:
            where.append(f"module `{f['module'] or '(the model itself)'}`")
        if f.get("location"):
            where.append(f"at `{f['location']}`")
        if where:
            st.caption(" · ".join(where))
        st.write(md(f.get("detail")))
        code = excerpt_text(f.get("location"))
        if code:
            st.code(code, language="python")
        plain, tables = evidence_tables(f.get("evidence") or {})
        chart = evidence_chart(f, run) if run is not None else None
        left, right = st.columns([1, 1]) if chart is not None and tables else (st.container(), None)
        with left:
            shown = [r for r in plain.itertuples() if r.value != ""]      # an empty list says nothing
            if shown:
                st.markdown(" · ".join(f"{md(r.evidence)}: **{md(r.value)}**" for r in shown))
            for name, table in tables:
                st.caption(name.replace("_", " "))
                st.dataframe(table, hide_index=True, width="stretch", height=min(36 * len(table) + 38, 260))
            if chart is not None and right is None:
                st.plotly_chart(chart, width="stretch", key=f"evidence-{key}")
        if right is not None:
            with right:
                st.plotly_chart(chart, width="stretch", key=f"evidence-{key}")
        if f.get("fix"):
            st.markdown(f":material/build: **Fix:** {md(f['fix'])}")
        patch_section(f, run, key)


@st.cache_data(max_entries=256, show_spinner=False)
def _patch_text(finding: str, path: str, mtime_ns: int, size: int) -> str | None:
    """The finding's patch against the file as it is (re-made when the file changes), or None."""
    from probes.patches import patch_for
    patch = patch_for(json.loads(finding))
    return patch.diff if patch is not None else None


def _current_patch_text(f: dict[str, Any]) -> str | None:
    from probes.patches import codes
    location = f.get("location")
    if f.get("code") not in codes() or not isinstance(location, str):
        return None
    path = location.rpartition(":")[0]
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    plain = {k: f.get(k) for k in ("code", "module", "location", "evidence", "title")}
    return _patch_text(json.dumps(plain, sort_keys=True, default=str), os.path.realpath(path), info.st_mtime_ns,
                       info.st_size)


def why_not_applied(f: dict[str, Any], run: RunView | None) -> str | None:
    """Why this dashboard will not write this finding's patch, or None: only a model-file check's findings,
    only in the file the dashboard was pointed at, only while it listens on this machine alone."""
    from app.server import is_loopback, listening_address
    if run is None or run.meta.get("source") != "check":
        return "Shown, not applied: this run is a training script's, which may still be running."
    target = st.session_state.get("model_file")
    where = (f.get("location") or "").rpartition(":")[0]
    if not target or os.path.realpath(where) != os.path.realpath(target):
        return f"Shown, not applied: it changes {where}, not the model file this dashboard was pointed at."
    if not is_loopback(listening_address()):
        return "Shown, not applied: this dashboard listens beyond 127.0.0.1, so it never writes files."
    return None


def patch_section(f: dict[str, Any], run: RunView | None, key: str) -> None:
    """The finding's patch as a diff, with **Apply fix** where this dashboard may write it."""
    diff = _current_patch_text(f)
    if diff is None:
        return
    st.caption("Patch: the change that fixes it, made with a syntax tree (formatting and comments kept)")
    st.code(diff, language="diff")
    refused = why_not_applied(f, run)
    if refused:
        st.caption(refused)
        return
    if st.button("Apply fix", key=f"apply-{key}", icon=":material/auto_fix_high:",
                 help="Write this change to the file (the original is kept beside it as FILE.bak), then check "
                      "it again"):
        apply_fix(f, diff)


def apply_fix(f: dict[str, Any], shown: str) -> None:
    from app.jobs import start_check
    from probes.patches import apply, patch_for
    patch = patch_for(f)
    if patch is None or patch.diff != shown:
        st.warning("The file changed since this fix was shown; it was not applied. The check runs again.")
        start_check("file saved")
        return
    try:
        backup = apply(patch)
    except (OSError, ValueError) as e:
        st.error(f"The fix was not applied: {md(e)}")
        return
    _patch_text.clear()
    st.toast(f"Fixed {f['code']} in {Path(patch.path).name}; the original is {backup.name}. Checking again…",
             icon=":material/auto_fix_high:")
    start_check("fix applied")
