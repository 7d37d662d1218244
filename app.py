"""Streamlit entry point: `streamlit run app.py`.

A thin layer over the library: importing calls `tracker.ingest.import_article`, the same
function as `tracker import`. Article text and model output are untrusted, so they are
shown with st.text / st.dataframe, never as Markdown or HTML.
"""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError
from sqlmodel import Session, desc, select

from tracker.config import NO_MODEL_MESSAGE, get_settings
from tracker.db import get_engine
from tracker.ingest import import_article
from tracker.models import Article, ArticleCreate, Claim

st.set_page_config(page_title="Claim Tracker", layout="wide")
settings = get_settings()
engine = get_engine(settings.database_url)

st.title("Claim Tracker")

with st.expander("Import an article", expanded=False):
    if not settings.model_configured:
        st.warning("No language model is configured.")
        st.text(NO_MODEL_MESSAGE)
    with st.form("import"):
        title = st.text_input("Title")
        url = st.text_input("URL")
        outlet = st.text_input("Outlet")
        text = st.text_area("Article text", height=240)
        submitted = st.form_submit_button("Extract claims", disabled=not settings.model_configured)
    if submitted:
        try:
            data = ArticleCreate(text=text, title=title, url=url, outlet=outlet)
        except ValidationError as exc:
            st.error(exc.errors()[0]["msg"])
        else:
            with st.spinner("Asking the model for check-worthy claims..."):
                outcome = import_article(engine, data, settings)
            if outcome.state == "failed":
                st.error(f"Extraction failed: {outcome.error}")
            elif outcome.state == "skipped":
                st.info("This article was imported and extracted before.")
            else:
                st.success(f"{outcome.claims} claims extracted ({outcome.dropped} dropped).")

with Session(engine) as session:
    rows = session.exec(
        select(Claim, Article)
        .join(Article, Article.id == Claim.article_id)
        .order_by(desc(Claim.checkworthiness), Claim.id)
        .limit(200)
    ).all()

st.subheader("Most check-worthy claims")
if not rows:
    st.text("No claims yet. Import an article above, or run `tracker import PATH`.")
else:
    st.dataframe(
        [
            {
                "score": claim.checkworthiness,
                "claim": claim.text,
                "claimant": claim.claimant or "",
                "type": claim.claim_type,
                "status": claim.status,
                "article": article.title or f"article {article.id}",
                "quote": claim.quote,
            }
            for claim, article in rows
        ],
        use_container_width=True,
        hide_index=True,
    )
