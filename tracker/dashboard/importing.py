"""Import: paste an article or upload files; claims are extracted with the configured
model (or the offline extractor) through the same library as `tracker import`."""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from tracker.dashboard.common import engine, notice, settings, who
from tracker.ingest import import_article
from tracker.models import ArticleCreate
from tracker.readers import FORMATS, ReadError, parse


def importer() -> None:
    from tracker.dashboard import page

    st.header("Import")
    db = engine()
    if not who().can_edit:
        st.info("Importing needs the reviewer role (and your name in the sidebar).")
        return
    extractor = "the offline extractor" if settings().uses_offline else settings().model
    st.text(f"Claims will be extracted with {extractor}.")
    with st.form("paste"):
        title = st.text_input("Title")
        url = st.text_input("URL")
        outlet = st.text_input("Outlet")
        text = st.text_area("Article text", height=240)
        uploads = st.file_uploader(
            "Or upload files", type=[s.lstrip(".") for s in FORMATS], accept_multiple_files=True
        )
        go = st.form_submit_button("Import and extract")
    if not go:
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
    progress = st.progress(0.0, text="Importing...")
    for number, item in enumerate(items, 1):
        if isinstance(item, ReadError):
            notice("error", "Could not read an input:", f"{item.source}: {item.reason}")
        else:
            if outlet and not item.outlet:
                item = item.model_copy(update={"outlet": outlet})
            outcome = import_article(db, item, settings())
            label = item.title or item.source_path or "article"
            if outcome.state == "failed":
                notice("error", "Extraction failed:", f"{label}: {outcome.error}")
            else:
                notice("success", f"{outcome.claims} claims ({outcome.state}).", label)
                if outcome.article_id:
                    st.page_link(
                        page("queue"),
                        label=f"Review the claims of article {outcome.article_id}",
                        query_params={"article_id": str(outcome.article_id)},
                    )
        progress.progress(number / len(items), text=f"{number} of {len(items)}")
