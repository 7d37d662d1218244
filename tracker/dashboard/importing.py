"""Import: paste an article or upload files. They are stored and queued at once; a worker
extracts them (a `tracker worker`, or one this dashboard starts for itself when none runs)
while the page shows their progress, so nobody waits on the model."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from tracker.dashboard.common import act, engine, notice, set_filter, settings, who
from tracker.models import ArticleCreate
from tracker.people import require
from tracker.readers import FORMATS, ReadError, parse
from tracker.workqueue import enqueue_one, progress, start_background_worker

RECENT = 50  # imports of this session shown with their progress


def importer() -> None:
    st.header("Import")
    me = who()
    if not me.can_edit:
        st.info("Importing needs the reviewer role (and your name in the sidebar).")
        return
    extractor = "the offline extractor" if settings().uses_offline else settings().model
    st.text(f"Claims will be extracted with {extractor}.")
    with st.form("paste", clear_on_submit=True):
        title = st.text_input("Title")
        url = st.text_input("URL")
        outlet = st.text_input("Outlet")
        text = st.text_area("Article text", height=240)
        uploads = st.file_uploader(
            "Or upload files", type=[s.lstrip(".") for s in FORMATS], accept_multiple_files=True
        )
        go = st.form_submit_button("Import")
    if go:
        _queue(me.name, title, url, outlet, text, uploads)
    _progress()


def _queue(name, title, url, outlet, text, uploads) -> None:
    if not act(require, engine(), name):
        return
    items: list[ArticleCreate | ReadError] = []
    if text.strip():
        try:
            items.append(ArticleCreate(text=text, title=title, url=url, outlet=outlet))
        except ValidationError as exc:
            items.append(ReadError("pasted text", exc.errors()[0]["msg"]))
    for upload in uploads or []:
        fmt = FORMATS.get("." + upload.name.rsplit(".", 1)[-1].lower(), "txt")
        items.extend(parse(upload.name, upload.getvalue(), fmt, None))
    if not items:
        st.warning("Paste a text or choose files.")
        return
    queued = 0
    for item in items:
        if isinstance(item, ReadError):
            notice("error", "Could not read an input:", f"{item.source}: {item.reason}")
            continue
        if outlet and not item.outlet:
            item = item.model_copy(update={"outlet": outlet})
        article_id = act(enqueue_one, engine(), item)
        if article_id:
            recent = st.session_state.setdefault("imported", [])
            if article_id in recent:
                recent.remove(article_id)
            recent.insert(0, article_id)
            del recent[RECENT:]
            queued += 1
    if queued:
        start_background_worker(engine(), settings())
        notice("success", f"{queued} article(s) queued for extraction.")


@st.fragment(run_every=2)
def _progress() -> None:
    """The session's imports and where they stand, redrawn every 2 seconds on its own
    (the rest of the page stays as it is)."""
    recent = st.session_state.get("imported", [])
    if not recent:
        return
    rows = progress(engine(), recent)
    st.subheader("Your imports")
    waiting = sum(1 for r in rows if r.state in ("pending", "extracting"))
    st.text(f"{waiting} still being extracted." if waiting else "All extracted.")
    if waiting:
        start_background_worker(engine(), settings())  # e.g. a worker that stopped meanwhile
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "article": r.article_id,
                    "title": r.title or "",
                    "state": r.state,
                    "claims": r.claims,
                    "error": r.error or "",
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    done = [r for r in rows if r.state == "extracted" and r.claims]
    for r in done[:5]:
        st.button(
            f"Review the {r.claims} claims of article {r.article_id}",
            key=f"review_{r.article_id}",
            on_click=set_filter,
            kwargs={"article_id": r.article_id},
        )
    if any(st.session_state.get(f"review_{r.article_id}") for r in done[:5]):
        from tracker.dashboard import page

        st.switch_page(page("queue"), query_params={})
