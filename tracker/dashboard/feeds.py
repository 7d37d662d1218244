"""Feeds: what `tracker watch` follows, with each feed's last fetch, error and back-off;
admins add and remove feeds here as with `tracker feeds add/remove`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tracker.dashboard.common import act, engine, show_flash, who
from tracker.feeds import add_feed, feed_statuses, remove_feed
from tracker.monitor import shown_url


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


def feeds() -> None:
    show_flash()
    st.header("Feeds")
    st.caption(
        "RSS, Atom and news sitemaps read by `tracker watch`: new entries' pages become "
        "articles, their claims are extracted, and repeats of checked claims raise alerts "
        "(Repeats page)."
    )
    db = engine()
    rows = feed_statuses(db)
    if rows:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": s.feed.id,
                        "url": shown_url(s.feed.url),
                        "outlet": s.feed.outlet or "",
                        "title": s.feed.title or "",
                        "last read": _when(s.feed.ok_at),
                        "failures": s.feed.failures,
                        "error": s.feed.error or "",
                        "next try": _when(s.feed.next_check_at),
                        "entries": s.entries,
                        "articles": s.articles,
                        "unreadable": s.failed_pages,
                    }
                    for s in rows
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.text("No feeds followed yet.")
    me = who()
    if not me.is_admin:
        st.info("Adding and removing feeds needs the admin role.")
        return
    with st.form("add_feed", clear_on_submit=True):
        url = st.text_input("Feed URL", placeholder="https://news.example/rss.xml")
        outlet = st.text_input("Outlet", help="Names the outlet of every article it brings")
        if st.form_submit_button("Add feed") and act(
            add_feed, db, url, outlet or None, actor=me.name or ""
        ):
            st.session_state["flash"] = "Feed added: tracker watch reads it on its next pass."
            st.rerun()
    if rows:
        with st.form("remove_feed"):
            ids = {s.feed.id: shown_url(s.feed.url) for s in rows}
            chosen = st.selectbox("Feed", list(ids), format_func=lambda i: f"{i}: {ids[i]}")
            if st.form_submit_button("Remove feed") and act(
                remove_feed, db, chosen, actor=me.name or ""
            ):
                st.session_state["flash"] = f"Feed {chosen} removed."
                st.rerun()
