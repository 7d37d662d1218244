"""The Streamlit dashboard: a page module each, over the same library as the CLI.

    common.py        identity, the queue filter (sidebar, in the URL), messages
    queue.py         the review queue, triage
    claim.py         one claim: context, matches, verdict, assignment, sources, history
    articles.py      articles with their claims highlighted in place (article_view.py)
    importing.py     paste or upload articles
    overview.py      charts over the filtered claims
    export.py        CSV, JSONL, ClaimReview of the filtered claims
    people.py        roles and activity
    repeats.py       repeat-claim alerts from the monitored feeds, to acknowledge
    feeds.py         the feeds `tracker watch` follows (admins add and remove them)

app.py draws the sidebar (`sign_in`, `filter_sidebar`) before running the chosen page.
"""

from __future__ import annotations

import streamlit as st

from tracker.dashboard.articles import articles
from tracker.dashboard.claim import claim_page
from tracker.dashboard.common import filter_sidebar, sign_in
from tracker.dashboard.export import exporter
from tracker.dashboard.feeds import feeds
from tracker.dashboard.importing import importer
from tracker.dashboard.overview import overview
from tracker.dashboard.people import people
from tracker.dashboard.queue import queue
from tracker.dashboard.repeats import repeats

_PAGES = {
    "queue": (queue, "Review queue", {"default": True}),
    # Reached from the queue, Save and next, links: not a menu entry of its own.
    "claim": (claim_page, "Claim", {"visibility": "hidden"}),
    "articles": (articles, "Articles", {}),
    "import": (importer, "Import", {}),
    "overview": (overview, "Overview", {}),
    "export": (exporter, "Export", {}),
    "people": (people, "People", {}),
    "repeats": (repeats, "Repeats", {}),
    "feeds": (feeds, "Feeds", {}),
}


def page(name: str) -> st.Page:
    """A page of the dashboard (st.switch_page and st.page_link take it). Made on demand:
    a Page belongs to the script run that registers it."""
    function, title, options = _PAGES[name]
    return st.Page(function, title=title, url_path=name, **options)


def pages() -> list[st.Page]:
    return [page(name) for name in _PAGES]


__all__ = ["filter_sidebar", "page", "pages", "sign_in"]
