"""Streamlit entry point: `streamlit run app.py`.

The pages live in tracker/dashboard/, a thin layer over the same library functions the
`tracker` command uses. The sidebar (who you are, the queue filter) is drawn here, once
for every page, so it holds across page switches and its filter lives in the URL.
"""

import streamlit as st
from sqlalchemy.exc import DBAPIError

from tracker.dashboard import filter_sidebar, pages, sign_in
from tracker.dashboard.common import database_problem

st.set_page_config(page_title="Claim Tracker", layout="wide")
page = st.navigation(pages())
st.session_state["on_page"] = page.url_path or "queue"  # where open_claim starts from
try:
    sign_in()
    filter_sidebar()
    page.run()
except DBAPIError as fault:  # the database is down, locked or gone: one line, no SQL
    st.error("The database cannot be used right now; reload the page in a moment.")
    st.text(database_problem(fault))
