"""Streamlit entry point: `streamlit run app.py`.

The pages live in tracker/dashboard/, a thin layer over the same library functions the
`tracker` command uses. The sidebar (who you are, the queue filter) is drawn here, once
for every page, so it holds across page switches and its filter lives in the URL.
"""

import streamlit as st

from tracker.dashboard import filter_sidebar, pages, sign_in

st.set_page_config(page_title="Claim Tracker", layout="wide")
page = st.navigation(pages())
sign_in()
filter_sidebar()
page.run()
