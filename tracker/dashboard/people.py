"""People: admins see everyone on the desk with their role and last activity, and give
roles; everyone else is told how roles are given."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tracker.dashboard.common import act, engine, notice, roles_help, who
from tracker.models import ROLES
from tracker.people import people as everyone
from tracker.people import set_role


def people() -> None:
    st.header("People")
    me = who()
    if not me.is_admin:
        st.info("Managing roles needs the admin role.")
        if me.name:
            st.text(f"You are {me.name}, with the {me.role} role.")
        roles_help()
        return
    roles_help()
    rows = everyone(engine())
    if rows:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "name": p.name,
                        "role": p.role + ("" if p.role_given else " (default)"),
                        "last active": f"{p.last_active:%Y-%m-%d %H:%M}" if p.last_active else "",
                        "changes": p.actions,
                    }
                    for p in rows
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    with st.form("role"):
        person = st.text_input("Name", help="As they type it, or their login e-mail")
        new_role = st.selectbox("Role", ROLES)
        if st.form_submit_button("Set role") and act(
            set_role, engine(), person, new_role, actor=me.name or ""
        ):
            notice("success", f"Role set: {new_role}.", person)
