"""Download buttons: the run's statistics (CSV, Parquet) and the single-file HTML report."""
import streamlit as st

from app import htmlreport
from app.data import RunView, statistics_frame, to_csv_bytes, to_parquet_bytes


def export_buttons(run: RunView) -> None:
    st.caption("Export this run")
    c1, c2, c3 = st.columns(3)
    c1.download_button("Statistics (CSV)", lambda: to_csv_bytes(statistics_frame(run)),
                       file_name=f"{run.name}.csv", mime="text/csv", on_click="ignore", key="export-csv")
    c2.download_button("Statistics (Parquet)", lambda: to_parquet_bytes(statistics_frame(run)),
                       file_name=f"{run.name}.parquet", mime="application/octet-stream", on_click="ignore",
                       key="export-parquet")
    c3.download_button("HTML report", lambda: htmlreport.render(run).encode(), file_name=f"{run.name}.html",
                       mime="text/html", on_click="ignore", key="export-html")
