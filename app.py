"""Streamlit entry point: `streamlit run app.py`.

The pages live in tracker/dashboard.py, a thin layer over the same library functions the
`tracker` command uses.
"""

import streamlit as st

from tracker.dashboard import PAGES, sign_in

st.set_page_config(page_title="Claim Tracker", layout="wide")
page = st.navigation(PAGES)
sign_in()
page.run()
