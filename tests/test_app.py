"""The dashboard, driven with Streamlit's AppTest: every page, and every review action."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from tracker.db import get_engine
from tracker.ingest import add_article
from tracker.matching import conflict
from tracker.models import ArticleCreate, Claim, ReviewEvent, Source
from tracker.people import set_role
from tracker.review import set_status

APP = str(Path(__file__).resolve().parents[1] / "app.py")
HOSTILE = (
    'Officials said <script>alert("x")</script> prices rose 9% in May. '
    "![tracker](http://evil.example/p.png) [click](javascript:alert(1)) **bold** claim."
)


@pytest.fixture
def db(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("TRACKER_DATABASE_URL", url)
    monkeypatch.setenv("TRACKER_ADMINS", "root")
    monkeypatch.setenv("TRACKER_TRUST_TYPED_NAMES", "true")  # no login in tests
    engine = get_engine(url)
    article, _ = add_article(
        engine, ArticleCreate(text=HOSTILE, title="<b>Title</b>", outlet="Wire")
    )
    with Session(engine) as session:
        for i in range(3):
            session.add(
                Claim(
                    article_id=article.id, text=f"{HOSTILE} ({i})", quote="prices rose 9% in May",
                    quote_start=HOSTILE.index("prices"), quote_end=HOSTILE.index(" in May") + 7,
                    checkworthiness=0.9 - i / 10, claim_type="statistic",
                )
            )  # fmt: skip
        session.commit()
    return engine


def _page_script(function_name: str) -> None:
    from tracker import dashboard

    dashboard.sign_in()
    dashboard.filter_sidebar()
    getattr(dashboard, {"claim": "claim_page"}.get(function_name, function_name))()


def page(function_name: str, *, claim: int | None = None, name: str | None = None) -> AppTest:
    """One dashboard page, as app.py runs it (sign-in box first)."""

    app = AppTest.from_function(_page_script, args=(function_name,), default_timeout=30)
    if claim is not None:
        app.query_params["claim"] = str(claim)
    app.run()
    if name is not None:
        app.sidebar.text_input(key="reviewer_name").input(name).run()
    return app


def _claim(engine, claim_id: int) -> Claim:
    with Session(engine) as session:
        return session.get(Claim, claim_id)


def _no_rendered_markup(app: AppTest) -> None:
    """Nothing untrusted in any element that renders Markdown."""
    rendered = [m.value for m in app.markdown] + [e.value for e in app.error]
    rendered += [e.value for e in app.success] + [e.value for e in app.info]
    rendered += [e.value for e in app.warning] + [e.label for e in app.metric]
    rendered += [str(e.value) for e in app.metric] + [e.value for e in app.subheader]
    assert not any("<script>" in value or "evil.example" in value for value in rendered)


def test_the_app_opens_on_the_queue(db):
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert app.dataframe[0].value["claim"].tolist()[0] == f"{HOSTILE} (0)"  # as text
    assert "3 claims match · most check-worthy first · page 1 of 1 · dismissed claims hidden" in [
        t.value for t in app.text
    ]
    _no_rendered_markup(app)


def test_queue_filters_live_in_the_url(db):
    set_status(db, 1, "checked", actor="ana", expected_version=1)
    app = AppTest.from_file(APP, default_timeout=30)
    app.query_params["statuses"] = "checked"
    app.run()
    assert app.dataframe[0].value["id"].tolist() == [1]
    assert app.query_params["statuses"] in ("checked", ["checked"])
    assert [m.value for m in app.metric][:3] == ["2", "0", "1"]  # unreviewed, in progress, checked


def test_a_status_change_is_saved_with_history(db):
    app = page("claim", claim=1, name="ana")
    assert not app.exception
    app.radio[0].set_value("disputed")
    app.text_area[0].input("BLS says 3.4%")
    app.button(key="FormSubmitter:status-Save").click().run()
    claim = _claim(db, 1)
    assert (claim.status, claim.version) == ("disputed", 2)
    with Session(db) as session:
        (event,) = session.exec(select(ReviewEvent)).all()
    assert (event.actor, event.to_value, event.note) == ("ana", "disputed", "BLS says 3.4%")
    assert "disputed" in app.dataframe[-1].value["to"].tolist()  # the history table


def test_without_a_name_nothing_can_be_saved(db):
    app = page("claim", claim=1)
    assert app.button(key="FormSubmitter:status-Save").disabled


def test_a_source_is_added_and_a_bad_url_refused(db):
    app = page("claim", claim=1, name="ana")
    form_inputs = [t for t in app.text_input if t.label in ("URL", "Title", "Note")]
    url, *_ = form_inputs
    url.input("javascript:alert(1)")
    app.button(key="FormSubmitter:source-Add source").click().run()
    assert "That is not a web address (http:// or https://)." in [e.value for e in app.error]
    url, title, _ = [t for t in app.text_input if t.label in ("URL", "Title", "Note")]
    url.input("https://www.bls.gov/lau/")
    title.input("BLS LAUS")
    app.selectbox[0].set_value("refutes")
    app.button(key="FormSubmitter:source-Add source").click().run()
    with Session(db) as session:
        (source,) = session.exec(select(Source)).all()
    assert (source.url, source.stance, source.added_by) == (
        "https://www.bls.gov/lau/",
        "refutes",
        "ana",
    )


def test_a_stale_save_is_refused_and_shows_the_newer_state(db):
    app = page("claim", claim=1, name="ben")
    set_status(db, 1, "checked", actor="ana", expected_version=1)  # someone else, meanwhile
    app.radio[0].set_value("disputed")
    app.button(key="FormSubmitter:status-Save").click().run()
    assert any("changed by someone else" in t.value for t in app.text)
    assert app.error[0].value == "Not saved: someone else changed this first."
    assert any("Now: checked" in t.value for t in app.text)
    assert _claim(db, 1).status == "checked"


def test_a_viewer_can_change_nothing(db):
    set_role(db, "vic", "viewer", actor="root")
    app = page("claim", claim=1, name="vic")
    assert app.button(key="FormSubmitter:status-Save").disabled
    assert app.button(key="FormSubmitter:edit-Save correction").disabled
    assert "Role: viewer" in [t.value for t in app.sidebar.text]


def test_hostile_article_text_is_shown_inert(db):
    app = page("claim", claim=1, name="ana")
    assert not app.exception
    texts = [t.value for t in app.text]
    assert HOSTILE[: HOSTILE.index("prices")].strip() in texts  # the article, verbatim,
    assert HOSTILE[HOSTILE.index(" in May") + 7 :].strip() in texts  # as plain text
    assert app.code[0].value == "prices rose 9% in May"  # the quote, highlighted as text
    _no_rendered_markup(app)


def test_save_and_next_moves_on(db):
    app = page("claim", claim=1, name="ana")
    app.radio[0].set_value("checked")
    app.button(key="FormSubmitter:status-Save and next").click().run()
    assert _claim(db, 1).status == "checked"


def test_a_claim_correction_is_recorded(db):
    app = page("claim", claim=2, name="ana")
    app.text_area[1].input("Prices rose 9% in May 2024.")
    app.button(key="FormSubmitter:edit-Save correction").click().run()
    assert _claim(db, 2).text == "Prices rose 9% in May 2024."


@pytest.mark.parametrize("name", ["articles", "overview", "exporter", "importer", "people"])
def test_every_other_page_renders(db, name):
    app = page(name, name="root")
    assert not app.exception
    _no_rendered_markup(app)


def test_an_article_with_a_hostile_title_and_error_stays_inert(db):
    from tracker.models import Article

    with Session(db) as session:
        article = session.get(Article, 1)
        article.title = "![t](http://evil.example/title.png)"
        article.extraction_state = "failed"
        article.extraction_error = "refused: ![e](http://evil.example/error.png)"
        session.add(article)
        session.commit()
    app = AppTest.from_function(_page_script, args=("articles",), default_timeout=30)
    app.query_params["article"] = "1"
    app.run()
    assert "![t](http://evil.example/title.png)" in [t.value for t in app.text]  # as text
    assert app.error[0].value == "Extraction failed:"
    _no_rendered_markup(app)


def test_export_offers_both_formats_and_explains_what_claimreview_needs(db):
    app = page("exporter")
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Download 3 claims as CSV", "Download 3 claims as JSONL"]
    app.button[0].click().run()  # Prepare ClaimReview
    assert any("TRACKER_PUBLISHER_NAME" in t.value for t in app.text)


def test_import_pasted_text_with_the_offline_extractor(db):
    app = page("importer", name="ana")
    app.text_area[0].input(
        "The council said the new bridge cost $40 million, twice the original budget. "
        "Officials expect it to open in March 2027."
    )
    app.button(key="FormSubmitter:paste-Import").click().run()
    assert not app.exception
    assert any("1 article(s) queued" in s.value for s in app.success)
    from tests.browser import wait_for
    from tracker.models import Article

    def extracted() -> bool:  # by the worker the dashboard started, in the background
        with Session(db) as session:
            return session.exec(select(Article).where(Article.id == 2)).one().extraction_state \
                == "extracted"  # fmt: skip

    wait_for(extracted, timeout=60, what="the background worker")
    app.run()
    assert "All extracted." in [t.value for t in app.text]


def test_admins_manage_roles(db):
    app = page("people", name="root")
    next(t for t in app.text_input if t.label == "Name").input("vic")
    app.selectbox[0].set_value("viewer")
    app.button(key="FormSubmitter:role-Set role").click().run()
    from tracker.people import role_of

    assert role_of(db, "vic") == "viewer"


def test_the_claim_page_shows_who_checked_it_already(db):
    from tracker.claimreview import FactCheckCreate, import_factchecks

    import_factchecks(
        db,
        [FactCheckCreate(claim_reviewed="Prices rose 9% in May, officials said.",
                         rating="Half true", organisation="PolitiFact",
                         url="https://politifact.example/prices")],
    )  # fmt: skip
    app = page("claim", claim=1, name="ana")
    shown = " ".join(t.value for t in app.text)
    assert "PolitiFact: Half true" in shown and "https://politifact.example/prices" in shown


def test_suggested_matches_are_decided_and_a_verdict_covers_the_cluster(db):
    from tracker.models import ClaimMatch

    with Session(db) as session:
        session.add(ClaimMatch(claim_id=2, other_id=1, score=0.8, state="suggested"))
        session.commit()
    app = page("claim", claim=2, name="ana")
    shown = next(t.value for t in app.text if t.value.startswith("Claim 1 [suggested"))
    assert "similarity 0.80" in shown and "unreviewed" in shown
    if conflict(_claim(db, 1).text, _claim(db, 2).text):  # e.g. other numbers: say so
        assert "careful:" in shown
    app.button(key="confirm_1").click().run()
    with Session(db) as session:
        assert session.get(ClaimMatch, 1).state == "confirmed"
    app.radio[0].set_value("checked")
    app.checkbox[0].check()
    app.button(key="FormSubmitter:status-Save").click().run()
    assert _claim(db, 1).status == _claim(db, 2).status == "checked"


def test_without_a_login_a_typed_admin_name_gets_no_admin_rights(db, monkeypatch):
    monkeypatch.setenv("TRACKER_TRUST_TYPED_NAMES", "false")
    from tracker.config import get_settings

    get_settings.cache_clear()
    app = page("people", name="ROOT")
    assert "Role: reviewer" in [t.value for t in app.sidebar.text]
    assert app.info[0].value == "Managing roles needs the admin role."


def test_a_claim_replaced_under_the_same_id_is_not_saved_over(db):
    app = page("claim", claim=3, name="ana")
    with Session(db) as session:  # a re-extraction deletes claim 3 and reuses its id
        old = session.get(Claim, 3)
        session.delete(old)
        session.commit()
        start = HOSTILE.index("prices")
        replacement = Claim(
            id=3, article_id=1, text="A different claim.", quote="prices rose 9%",
            quote_start=start, quote_end=start + 14, checkworthiness=0.5,
        )  # fmt: skip
        session.add(replacement)
        session.commit()
    app.radio[0].set_value("checked")
    app.button(key="FormSubmitter:status-Save").click().run()
    assert _claim(db, 3).status == "unreviewed"
    assert any("replaced by a new extraction" in w.value for w in app.warning)


@pytest.mark.parametrize("param", [{"page": "x"}, {"page": "²"}, {"claim": "²"}])
def test_malformed_links_do_not_crash(db, param):
    app = AppTest.from_file(APP, default_timeout=30)
    for key, value in param.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception


def test_a_new_filter_starts_on_the_first_page(db):
    app = AppTest.from_file(APP, default_timeout=30)
    app.query_params["page"] = "3"
    app.run()
    app.multiselect[0].set_value(["unreviewed"]).run()
    assert "3 claims match · most check-worthy first · page 1 of 1 · dismissed claims hidden" in [
        t.value for t in app.text
    ]
