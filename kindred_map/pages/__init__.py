"""The dashboard's Streamlit pages: map, change, about, and the editor's upload and edit screens.

Streamlit code only: each module arranges widgets and calls the package's logic; `app.py` (the
entry `streamlit run` starts) sets the page up and runs the navigation."""
