"""ForgeScope dashboard (Streamlit). Start it with `streamlit run app/main.py`."""
