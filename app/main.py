"""ForgeScope dashboard: `streamlit run app/main.py`.

One entry point (st.navigation); each page is a thin script under app/views/ that reads the current run
and hands its data to the figure builders in app/figures.py.
"""
import sys
import time
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from app import server, session, sidebar  # noqa: E402

if not getattr(server, "_arenas_capped", False):     # once per server process
    server._arenas_capped = True
    server.cap_malloc_arenas()

st.set_page_config(page_title="ForgeScope", page_icon=":material/troubleshoot:", layout="wide")

PAGES = [
    st.Page("views/findings.py", title="Findings", default=True),
    st.Page("views/tree.py", title="Registration tree", url_path="tree"),
    st.Page("views/gradients.py", title="Gradients", url_path="gradients"),
    st.Page("views/weights.py", title="Weights", url_path="weights"),
    st.Page("views/memory.py", title="Memory", url_path="memory"),
    st.Page("views/data_loading.py", title="Data loading", url_path="data"),
    st.Page("views/runs.py", title="Runs", url_path="runs"),
]
# tools that are not about the run on screen, in a menu of their own (the top bar fits ~7 links at 1280 px)
TOOLS = [st.Page("views/checkpoint.py", title="Checkpoint doctor", url_path="checkpoint")]
# shown only for a run written by several torch.distributed ranks (a shared screen has room for 7 tabs)
RANKS = st.Page("views/ranks.py", title="Ranks", url_path="ranks")

# less empty space above the page title, so a 1280x720 shared screen shows the charts, not the margin
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:3.5rem}</style>")
session.init()
pages = PAGES[:-1] + [RANKS, PAGES[-1]] if session.multi_rank() else PAGES
page = st.navigation({"": pages, "Tools": TOOLS}, position="top")
st.session_state.page_title = page.title      # the live poll reruns the Runs page when a new run appears
sidebar.sidebar()
session.sync_url()
started = time.monotonic()
page.run()
# how long this page took to draw: a live run's charts are not redrawn more often than they can be
st.session_state.page_seconds = time.monotonic() - started
st.session_state.page_done = time.monotonic()
