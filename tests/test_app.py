"""The dashboard entry point renders over the same database the CLI writes."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from tracker.db import get_engine
from tracker.ingest import add_article
from tracker.models import ArticleCreate, Claim

APP = str(Path(__file__).resolve().parents[1] / "app.py")
HOSTILE = '<script>alert("x")</script> ![img](http://evil.example/p.png) prices rose 9%'


def test_dashboard_shows_claims_as_inert_text(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("TRACKER_DATABASE_URL", url)
    engine = get_engine(url)
    article, _ = add_article(engine, ArticleCreate(text=HOSTILE, title="<b>bold</b>"))
    with Session(engine) as session:
        session.add(
            Claim(
                article_id=article.id,
                text=HOSTILE,
                quote="prices rose 9%",
                quote_start=HOSTILE.index("prices"),
                quote_end=len(HOSTILE),
                checkworthiness=0.7,
            )
        )
        session.commit()

    app = AppTest.from_file(APP, default_timeout=30).run()

    assert not app.exception
    table = app.dataframe[0].value
    assert table["claim"].tolist() == [HOSTILE]  # shown verbatim in a table, not rendered
    assert table["article"].tolist() == ["<b>bold</b>"]
    assert all("<script>" not in m.value for m in app.markdown)
    assert "No language model is configured." in [w.value for w in app.warning]
