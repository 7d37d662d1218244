"""ClaimReview: publishing reviewed claims, importing others' fact-checks, and finding them."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from tracker.claimreview import claim_reviews, import_factchecks, prior_checks, read_factchecks
from tracker.cli import app
from tracker.db import get_engine
from tracker.ingest import add_article
from tracker.models import Article, ArticleCreate, Claim, FactCheck
from tracker.review import edit_claim, set_status

TEXT = "The mayor said unemployment fell to 3.1% in May, the lowest since 2001."


@pytest.fixture
def published(monkeypatch, tmp_path):
    """A database with two reviewed claims and one unreviewed, and publisher settings."""
    url = f"sqlite:///{tmp_path / 'cr.db'}"
    monkeypatch.setenv("TRACKER_DATABASE_URL", url)
    monkeypatch.setenv("TRACKER_PUBLISHER_NAME", "Example Fact Check")
    monkeypatch.setenv("TRACKER_PUBLISHER_URL", "https://factcheck.example.org")
    monkeypatch.setenv("TRACKER_REVIEW_URL_TEMPLATE", "https://factcheck.example.org/c/{id}")
    engine = get_engine(url)
    article, _ = add_article(
        engine,
        ArticleCreate(text=TEXT, title="Jobs", url="https://news.example/jobs", outlet="Gazette",
                      published_at="2024-06-02"),
    )  # fmt: skip
    with Session(engine) as session:
        for text, claimant in [
            ("Unemployment fell to 3.1% in May 2024.", "Mayor Jane Doe"),
            ("Unemployment is the lowest since 2001.", None),
            ("The mayor will run again.", "Mayor Jane Doe"),
        ]:
            session.add(Claim(article_id=article.id, text=text, quote=TEXT[15:47],
                              quote_start=15, quote_end=47, claimant=claimant,
                              checkworthiness=0.8))  # fmt: skip
        session.commit()
    set_status(engine, 1, "checked", actor="ana", expected_version=1)
    set_status(engine, 2, "disputed", actor="ana", expected_version=1)
    edit_claim(engine, 2, actor="ana", expected_version=2, rating="Mostly false")
    return engine


def test_claimreview_export_follows_the_export_filters(published):
    runner = CliRunner()

    def reviewed(*options: str) -> list[str]:
        result = runner.invoke(app, ["export", "-f", "claimreview", *options])
        assert result.exit_code == 0, result.stderr
        return [r["claimReviewed"] for r in json.loads(result.stdout)]

    assert reviewed("--status", "disputed") == ["Unemployment is the lowest since 2001."]
    assert reviewed("--status", "unreviewed") == []  # never published, even when asked
    assert reviewed("--outlet", "Elsewhere") == []
    assert len(reviewed("--outlet", "Gazette")) == 2


def test_claimreview_export_shape_field_by_field(published, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["export", "--format", "claimreview", "-o", str(tmp_path / "cr.json")]
    )
    assert result.exit_code == 0, result.stderr
    reviews = json.loads((tmp_path / "cr.json").read_text())
    assert len(reviews) == 2  # only reviewed claims
    first, second = reviews
    assert first["@context"] == "https://schema.org" and first["@type"] == "ClaimReview"
    assert first["claimReviewed"] == "Unemployment fell to 3.1% in May 2024."
    assert first["reviewRating"] == {
        "@type": "Rating", "alternateName": "Accurate", "ratingValue": 5,
        "bestRating": 5, "worstRating": 1,
    }  # fmt: skip
    assert first["url"] == "https://factcheck.example.org/c/1"
    assert first["author"] == {
        "@type": "Organization", "name": "Example Fact Check",
        "url": "https://factcheck.example.org",
    }  # fmt: skip
    assert len(first["datePublished"]) == 10  # an ISO date: when the verdict was given
    assert first["itemReviewed"] == {
        "@type": "Claim",
        "author": {"@type": "Person", "name": "Mayor Jane Doe"},
        "datePublished": "2024-06-02",
        "appearance": {"@type": "CreativeWork", "url": "https://news.example/jobs"},
    }
    assert second["reviewRating"]["alternateName"] == "Mostly false"  # the reviewer's words
    assert second["itemReviewed"]["author"] == {"@type": "Organization", "name": "Gazette"}


def test_missing_settings_write_nothing_and_say_what_to_set(published, tmp_path, monkeypatch):
    monkeypatch.delenv("TRACKER_PUBLISHER_NAME")
    from tracker.config import get_settings

    get_settings.cache_clear()
    target = tmp_path / "cr.json"
    result = CliRunner().invoke(app, ["export", "--format", "claimreview", "-o", str(target)])
    assert result.exit_code == 1
    assert "TRACKER_PUBLISHER_NAME" in result.stderr
    assert not target.exists() and list(tmp_path.glob(".cr.json*")) == []


def test_an_export_reimported_gives_the_same_reviews_back(published, tmp_path):
    from tracker.config import get_settings

    reviews = claim_reviews(published, get_settings())
    path = tmp_path / "cr.json"
    path.write_text(json.dumps(reviews))
    result = CliRunner().invoke(app, ["import-factchecks", str(path)])
    assert result.exit_code == 0 and "2 fact-checks added" in result.stderr
    again = CliRunner().invoke(app, ["import-factchecks", str(path)])
    assert "0 fact-checks added, 0 updated, 2 known already" in again.stderr
    with Session(published) as session:
        checks = session.exec(select(FactCheck).order_by(FactCheck.id)).all()
    assert [
        (c.claim_reviewed, c.rating, c.organisation, c.url, c.date_published.date().isoformat(),
         c.claimant, c.appearance_url) for c in checks
    ] == [
        (r["claimReviewed"], r["reviewRating"]["alternateName"], r["author"]["name"], r["url"],
         r["datePublished"], r["itemReviewed"]["author"]["name"],
         r["itemReviewed"]["appearance"]["url"]) for r in reviews
    ]  # fmt: skip


def test_jsonl_graphs_and_bad_entries(tmp_path, engine):
    path = tmp_path / "feed.jsonl"
    path.write_text(
        json.dumps({"@context": "https://schema.org", "@graph": [
            {"@type": "ClaimReview", "claimReviewed": "Vaccines cause autism.",
             "reviewRating": {"@type": "Rating", "alternateName": "False"},
             "author": {"@type": "Organization", "name": "Snopes"},
             "url": "https://snopes.example/autism", "datePublished": "2020-01-05"}]}) + "\n"
        + "{broken\n"
        + json.dumps({"@type": "ClaimReview", "claimReviewed": "  "}) + "\n"
    )  # fmt: skip
    items = list(read_factchecks(path))
    counts = import_factchecks(engine, items)
    assert (counts.added, counts.invalid) == (1, 2)
    matches = prior_checks(engine, "He said vaccines cause autism in children.")
    assert [(m.organisation, m.rating) for m, _ in matches] == [("Snopes", "False")]
    assert prior_checks(engine, "Bridges cost four million dollars.") == []


def test_an_institution_is_published_as_an_organization_not_a_person(published):
    from tracker.claimreview import claim_reviews
    from tracker.config import get_settings

    with Session(published) as session:
        claim = session.get(Claim, 1)
        claim.claimant = "Congressional Budget Office"
        session.add(claim)
        session.commit()
    reviews = claim_reviews(published, get_settings())
    assert reviews[0]["itemReviewed"]["author"] == {
        "@type": "Organization", "name": "Congressional Budget Office",
    }  # fmt: skip


def _review(rating: str, **extra) -> dict:
    return {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "claimReviewed": "Unemployment fell to 3.1% in May.",
        "reviewRating": {"@type": "Rating", "alternateName": rating},
        "author": {"@type": "Organization", "name": "Full Fact"},
        "url": "https://fullfact.example/jobs",
        "datePublished": "2024-06-03",
        **extra,
    }


def test_factcheck_files_as_publishers_write_them(tmp_path, engine):
    """Array @type, a folder of files, an empty file, a corrected rating, a bad date."""
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "a.jsonld").write_text(
        json.dumps(_review("Mostly false", **{"@type": ["ClaimReview"]}))
    )
    (folder / "empty.json").write_text("")
    undated = _review("False", url="https://x.example/2", datePublished="someday")
    (folder / "bad.json").write_text(json.dumps({"@graph": [undated]}))
    items = list(read_factchecks(folder))
    errors = {i.source: i.reason for i in items if not hasattr(i, "key")}
    assert errors[str(folder / "empty.json")] == "empty file"
    bad = errors[f"{folder / 'bad.json'}@graph[0]"]
    assert bad.startswith("date_published")  # names the field
    assert import_factchecks(engine, items).added == 1
    corrected = tmp_path / "corrected.json"
    corrected.write_text(json.dumps(_review("False")))
    counts = import_factchecks(engine, read_factchecks(corrected))
    assert (counts.added, counts.updated) == (0, 1)
    ((check, _),) = prior_checks(engine, "Unemployment fell to 3.1% in May.")
    assert check.rating == "False"  # the publisher's correction, not the old rating
    assert import_factchecks(engine, read_factchecks(corrected)).known == 1


def test_stats_show_the_fact_checks_loaded_and_the_matches(published, tmp_path):
    (tmp_path / "fc.json").write_text(json.dumps(_review("False")))
    runner = CliRunner()
    assert runner.invoke(app, ["import-factchecks", str(tmp_path / "fc.json")]).exit_code == 0
    data = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert data["fact_checks"] == 1 and data["matches"] == {}
    assert "1 published fact-checks loaded" in runner.invoke(app, ["stats"]).stdout


def _check(claim: str, **extra) -> dict:
    return {
        "@context": "https://schema.org", "@type": "ClaimReview", "claimReviewed": claim,
        "url": f"https://checks.example/{abs(hash(claim))}",
        "reviewRating": {"@type": "Rating", "alternateName": "False"}, **extra,
    }  # fmt: skip


def test_odd_fact_checks_are_per_entry_errors_and_valid_ones_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{tmp_path / 'fc.db'}")
    folder = tmp_path / "checks"
    folder.mkdir()
    for i in range(5):
        (folder / f"ok-{i}.json").write_text(json.dumps(_check(f"Crime rose {i}0% in May.")))
    (folder / "text-rating.json").write_text(
        json.dumps(_check("Taxes doubled in 2024.", reviewRating="False"))
    )
    (folder / "odd.json").write_text(
        json.dumps(
            [
                _check("Rents fell 4% in June.", reviewRating={"ratingValue": {"x": 1}}),
                _check("Wages rose 2% in 2023.", author=[[{"name": {"deep": 1}}]]),
                _check("Bus fares rose 3% in 2022."),
            ]
        )
    )
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "deep-list.json").write_text("[" * 500 + json.dumps(_check("x" * 20)) + "]" * 500)
    result = CliRunner().invoke(app, ["import-factchecks", str(folder)])
    assert result.exit_code == 1
    assert "8 fact-checks added, 0 updated, 0 known already, 3 invalid" in result.stderr
    assert "odd.json[0]: reviewRating.ratingValue: must be a text or a number" in result.stderr
    assert "deep.json: invalid JSON: nested too deeply" in result.stderr
    assert "deep-list.json" in result.stderr and "nested too deeply" in result.stderr
    with Session(get_engine(f"sqlite:///{tmp_path / 'fc.db'}")) as session:
        ratings = dict(session.exec(select(FactCheck.claim_reviewed, FactCheck.rating)).all())
    assert ratings["Taxes doubled in 2024."] == "False"  # a rating given as plain text
    assert ratings["Wages rose 2% in 2023."] == "False"  # an odd author is left out
    assert "{'x': 1}" not in ratings.values()


def test_claimreview_json_ld_is_safe_inside_a_script_element(published, tmp_path):
    from tracker.config import get_settings

    engine = published
    with Session(engine) as session:
        claim = session.get(Claim, 1)
        claim.text = 'Taxes </script><script>alert("x")</script> & more'
        claim.rating = "<b>False</b>"
        session.add(claim)
        article = session.exec(select(Article)).one()
        article.url = "@SUM(1+1)*cmd|' /C calc'!A0"
        session.add(article)
        session.commit()
    from io import StringIO

    from tracker.claimreview import write_claimreview

    out = StringIO()
    write_claimreview(engine, get_settings(), out)
    text = out.getvalue()
    assert "<" not in text and ">" not in text and "&" not in text
    reviews = json.loads(text)  # the same data
    assert reviews[0]["claimReviewed"] == 'Taxes </script><script>alert("x")</script> & more'
    assert reviews[0]["reviewRating"]["alternateName"] == "<b>False</b>"
    assert all("appearance" not in r["itemReviewed"] for r in reviews)  # not a web address


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("https://x.example/{id}/{slug}", "unknown field(s) {slug}"),
        ("https://x.example/{id}/{0}", "unknown field(s) {0}"),
        ("https://x.example/{id}/{", "cannot be filled in"),
        ("javascript:alert(1)//{id}", "not a web address"),
    ],
)
def test_a_bad_review_url_template_is_a_clear_error(published, monkeypatch, template, says):
    from tracker.config import get_settings

    monkeypatch.setenv("TRACKER_REVIEW_URL_TEMPLATE", template)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["export", "-f", "claimreview"])
    assert result.exit_code == 1 and says in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
