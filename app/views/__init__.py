"""The dashboard's pages: each module here is a script that st.navigation runs (never imported)."""
