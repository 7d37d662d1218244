"""Articles: the latest imports with their claim counts and extraction errors; pick one to
read it with its claims highlighted in place (click a highlight to open its claim)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tracker import articles as library
from tracker.dashboard.article_view import article_view
from tracker.dashboard.common import (
    engine,
    int_param,
    notice,
    open_claim,
    settings,
    show_flash,
    who,
)
from tracker.feeds import appearances
from tracker.ingest import import_article
from tracker.models import ArticleCreate


def _on_pick() -> None:
    selection = st.session_state["articles_table"]["selection"]
    rows = selection.get("rows") or [cell[0] for cell in selection.get("cells") or []]
    ids = st.session_state.get("article_ids", [])
    if rows and rows[0] < len(ids):
        st.query_params["article"] = str(ids[rows[0]])


def articles() -> None:
    show_flash()
    st.header("Articles")
    db = engine()
    wanted = int_param("article")
    if wanted is not None:
        _article(wanted)
        st.divider()
    rows = library.recent(db)
    if not rows:
        st.text("No articles yet. Import some on the Import page or with `tracker import`.")
        return
    st.session_state["article_ids"] = [r.id for r in rows]
    st.caption("The latest 500 articles. Click one to read it with its claims.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r.id,
                    "title": r.title or "",
                    "outlet": r.outlet or "",
                    "state": r.state,
                    "claims": r.claims,
                    "imported": f"{r.imported_at:%Y-%m-%d %H:%M}",
                    "error": r.error or "",
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
        on_select=_on_pick,
        selection_mode=["single-row", "single-cell"],
        key="articles_table",
    )


def _article(article_id: int) -> None:
    found = library.get(engine(), article_id)
    if found is None:
        st.error(f"There is no article {article_id}.")
        return
    article, claims = found
    st.subheader(f"Article {article.id}")
    st.text(article.title or "(no title)")
    st.text(
        f"{article.outlet or ''} {article.url or ''}\n"
        f"{article.extraction_state}, {len(claims)} claims"
        + (
            f", {article.claims_dropped} dropped (quote not found)"
            if article.claims_dropped
            else ""
        )
    )
    seen = appearances(engine(), article.id)
    if seen:  # the same text from several outlets is one article: where it ran
        st.text(
            "Seen in the feeds:\n"
            + "\n".join(f"{a.seen_at:%Y-%m-%d %H:%M}  {a.outlet or ''}  {a.url}" for a in seen)
        )
    if article.extraction_error:
        notice("error", "Extraction failed:", article.extraction_error)
    if who().is_admin and st.button("Re-extract"):
        data = ArticleCreate(text=article.text, title=article.title)
        with st.spinner("Extracting..."):
            outcome = import_article(engine(), data, settings(), force=True)
        st.text(f"{outcome.state}: {outcome.claims} claims {outcome.error or ''}")
    st.caption(
        "The claims' quotes are highlighted; the number after each is its claim id. "
        "Click one (or Tab to it and press Enter) to open the claim."
    )
    picked = article_view(library.stretches(article.text, claims), key=f"article_{article.id}")
    if picked is not None:
        open_claim(picked)
