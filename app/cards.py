"""One finding drawn as a card: severity, title, where, what was seen (its evidence) and the fix.

Shared by the Findings page (a run's findings) and the Checkpoint page (the checkpoint doctor's).
"""
from __future__ import annotations

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
