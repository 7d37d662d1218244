"""The same claim in many articles: matching, clusters, one verdict for a cluster."""

from __future__ import annotations

import json
import unicodedata

from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.conftest import make_settings
from tracker.cli import app
from tracker.db import create_db_engine
from tracker.ingest import import_article
from tracker.matching import cluster_of, decide, matches_of, set_cluster_status, similarity
from tracker.models import ArticleCreate, Claim, ClaimMatch, ReviewEvent

SHARED = "Officials said unemployment in Ohio fell to 3.1 percent in May, the lowest since 2001."
REWORDED = (
    "Unemployment in Ohio dropped to 3.1 percent in May, officials said, the lowest rate "
    "since 2001."
)
OTHER = "The city council approved a new budget of 40 million dollars for road repairs."


def _import(engine, url, *texts):
    settings = make_settings(url, openai_api_key=None, openai_base_url=None)
    for i, text in enumerate(texts):
        import_article(engine, ArticleCreate(text=text, title=f"A{i}"), settings)
    with Session(engine) as session:
        return {c.text: c for c in session.exec(select(Claim))}


def test_the_same_sentence_in_two_articles_is_linked_into_one_cluster(engine, db_url):
    _import(engine, db_url, f"{SHARED} {OTHER}", f"Breaking. {SHARED}")
    with Session(engine) as session:
        shared = session.exec(select(Claim).where(Claim.text == SHARED).order_by(Claim.id)).all()
        (match,) = session.exec(select(ClaimMatch)).all()
    assert len(shared) == 2
    assert (match.claim_id, match.other_id, match.state) == (shared[1].id, shared[0].id, "linked")
    assert shared[0].cluster_id == shared[1].cluster_id == shared[0].id
    assert [c.id for c in cluster_of(engine, shared[1].id)] == [c.id for c in shared]


def test_a_reworded_claim_is_suggested_and_a_reviewer_decides(engine, db_url):
    _import(engine, db_url, SHARED, REWORDED, OTHER)
    with Session(engine) as session:
        (match,) = session.exec(select(ClaimMatch)).all()
    assert match.state == "suggested" and 0.75 <= match.score < 0.95
    ((found, other),) = matches_of(engine, match.other_id)
    assert other.text == REWORDED and found.id == match.id
    decide(engine, match.id, True, actor="ana")
    assert len(cluster_of(engine, match.claim_id)) == 2


def test_a_rejected_suggestion_joins_nothing(engine, db_url):
    _import(engine, db_url, SHARED, REWORDED)
    with Session(engine) as session:
        (match,) = session.exec(select(ClaimMatch)).all()
    decided = decide(engine, match.id, False, actor="ana")
    assert (decided.state, decided.decided_by) == ("rejected", "ana")
    assert len(cluster_of(engine, match.claim_id)) == 1


def test_one_verdict_for_the_cluster_is_recorded_on_each_claim(engine, db_url):
    _import(engine, db_url, SHARED, f"Breaking. {SHARED}", f"More news. {SHARED}")
    with Session(engine) as session:
        ids = [c.id for c in session.exec(select(Claim).where(Claim.text == SHARED))]
    members = cluster_of(engine, ids[0])
    assert len(members) == 3
    seen = {m.id: m.version for m in members}
    assert (
        set_cluster_status(engine, ids[2], "disputed", actor="ana", seen=seen, note="BLS: 3.4%")
        == 3
    )
    with Session(engine) as session:
        statuses = {c.status for c in session.exec(select(Claim).where(Claim.id.in_(ids)))}
        events = session.exec(select(ReviewEvent)).all()
    assert statuses == {"disputed"}
    assert sorted(e.claim_id for e in events) == sorted(ids)


def test_unrelated_claims_do_not_match():
    assert similarity(SHARED, OTHER) < 0.5
    assert similarity(SHARED, REWORDED) > 0.75


def test_the_queue_can_show_one_row_per_cluster(engine, db_url):
    from tracker.queue import QueueFilter, queue_page

    _import(engine, db_url, SHARED, f"Breaking. {SHARED}", OTHER)
    assert queue_page(engine, QueueFilter())[1] == 3
    rows, total = queue_page(engine, QueueFilter(one_per_cluster=True))
    assert total == 2 and sorted(r.claim.text for r in rows) == sorted([SHARED, OTHER])
    assert QueueFilter.from_params({"one_per_cluster": "True"}).one_per_cluster


def test_a_cluster_verdict_over_someone_elses_change_saves_nothing(engine, db_url):
    import pytest

    from tracker.review import StaleEdit, set_status

    _import(engine, db_url, SHARED, f"Breaking. {SHARED}")
    members = cluster_of(engine, 1)
    seen = {m.id: m.version for m in members}
    set_status(engine, members[1].id, "disputed", actor="ben", expected_version=1)
    with pytest.raises(StaleEdit):
        set_cluster_status(engine, members[0].id, "checked", actor="ana", seen=seen)
    statuses = [c.status for c in cluster_of(engine, 1)]
    assert statuses == ["unreviewed", "disputed"]  # all or nothing


def test_a_match_is_decided_once(engine, db_url):
    import pytest

    _import(engine, db_url, SHARED, REWORDED)
    with Session(engine) as session:
        (match,) = session.exec(select(ClaimMatch)).all()
    decide(engine, match.id, True, actor="ana")
    with pytest.raises(ValueError, match="already confirmed"):
        decide(engine, match.id, False, actor="ben")


def test_a_batch_import_links_the_same_claim_across_its_own_articles(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tracker.cli import app

    folder = tmp_path / "wire"
    folder.mkdir()
    for outlet in ("gazette", "herald", "tribune"):
        (folder / f"{outlet}.txt").write_text(f"From the {outlet} desk. {SHARED}")
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{tmp_path / 'batch.db'}")
    result = CliRunner().invoke(app, ["import", str(folder), "-c", "3"])
    assert result.exit_code == 0, result.stderr
    from tracker.db import get_engine

    engine = get_engine(f"sqlite:///{tmp_path / 'batch.db'}")
    with Session(engine) as session:
        shared = session.exec(select(Claim).where(Claim.text == SHARED)).all()
    assert len(shared) == 3 and len({c.cluster_id for c in shared}) == 1


def test_repeats_are_found_when_their_words_are_common(engine, db_url, monkeypatch):
    """At scale most words are in many claims; the search reads only a budget of postings
    (here 2) and must still find the repeated and the reworded claim."""
    monkeypatch.setattr("tracker.matching.POSTINGS", 2)
    fillers = [
        f"Officials said unemployment in Ohio rose to {n} percent in May {year}."
        for n, year in ((5.2, 1990), (6.8, 1995), (7.1, 2009))
    ]
    claims = _import(engine, db_url, SHARED, *fillers, f"Breaking. {SHARED}", REWORDED)
    assert set(fillers) <= set(claims)
    with Session(engine) as session:
        found = {
            (session.get(Claim, m.claim_id).text, session.get(Claim, m.other_id).text, m.state)
            for m in session.exec(select(ClaimMatch))
        }
    assert (SHARED, SHARED, "linked") in found
    assert any(a == REWORDED and b == SHARED for a, b, _ in found), found


def _clef_fixture(folder):
    """A three-claim, two-query stand-in for CLEF 2020 task 2, in its file formats."""
    clef = folder / "clef2020-claim-retrieval"
    (clef / "dev").mkdir(parents=True)
    (clef / "verified_claims.docs.tsv").write_text(
        "\tvclaim\ttitle\n"
        f"0\t{SHARED}\tOhio jobless rate\n"
        f"1\t{OTHER}\tRoad budget\n"
        "2\tA photo shows a shark swimming on a flooded Houston highway.\tShark on highway\n"
    )
    (clef / "dev" / "tweets.queries.tsv").write_text(
        "tweet_id\ttweet_content\n"
        "t1\tWow, a shark swimming on the highway in Houston! pic.twitter.com/x #flood\n"
        "t2\tCouncil approved 40 million dollars budget for road repairs @cityhall\n"
    )
    (clef / "dev" / "tweet-vclaim-pairs.qrels").write_text("t1 0 2 1\nt2 0 1 1\n")
    return folder


def test_eval_matching_reports_map_at_5_and_leaves_the_database_empty(db_url, tmp_path):
    data = _clef_fixture(tmp_path / "datasets")
    runner = CliRunner()
    result = runner.invoke(
        app, ["eval", "--task", "matching", "--data", str(data), "--database-url", db_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "name": "CLEF 2020 claim retrieval (dev)", "queries": 2, "map_at_5": 1.0,
    }  # fmt: skip
    engine = create_db_engine(db_url)
    with Session(engine) as session:
        assert session.exec(select(Claim)).all() == []
    _import(engine, db_url, SHARED)  # a database in use is refused, not emptied
    engine.dispose()
    refused = runner.invoke(
        app, ["eval", "--task", "matching", "--data", str(data), "--database-url", db_url]
    )
    assert refused.exit_code == 2 and "needs an empty" in refused.output
    engine = create_db_engine(db_url)
    with Session(engine) as session:
        assert len(session.exec(select(Claim)).all()) == 1
    engine.dispose()


def test_eval_matching_deletes_only_its_own_rows(db_url, tmp_path, monkeypatch):
    """An article imported into the database while the evaluation runs survives it."""
    import tracker.matching

    data = _clef_fixture(tmp_path / "datasets")
    real_rank, imported = tracker.matching.rank, []

    def rank_then_import(session, text, limit=5):
        if not imported:
            engine = create_db_engine(db_url)
            imported.append(_import(engine, db_url, OTHER))
            engine.dispose()
        return real_rank(session, text, limit)

    monkeypatch.setattr(tracker.matching, "rank", rank_then_import)
    result = CliRunner().invoke(
        app, ["eval", "--task", "matching", "--data", str(data), "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    engine = create_db_engine(db_url)
    with Session(engine) as session:
        assert [c.text for c in session.exec(select(Claim))] == [OTHER]
    engine.dispose()


def _pairs(engine):
    with Session(engine) as session:
        return {
            (session.get(Claim, m.claim_id).text, session.get(Claim, m.other_id).text)
            for m in session.exec(select(ClaimMatch))
        }


def test_a_repeat_with_a_misspelt_name_is_found(engine, db_url, monkeypatch):
    """Words no other claim holds (a typo, a new name) must not be taken for the rarest."""
    monkeypatch.setattr("tracker.matching.POSTINGS", 2)
    monkeypatch.setattr("tracker.matching.PG_POSTINGS", 2)
    original = "Governor Whitmer said unemployment in Michigan rose to 9 percent in April."
    typo = "Govenor Whitmerr said unemployment in Michigan rose to 9 percent in April."
    fillers = [f"Unemployment in Michigan rose to {n} percent in {m}." for n, m in
               ((5, "May"), (6, "June"), (7, "July"))]  # fmt: skip
    _import(engine, db_url, original, *fillers, typo)
    assert (typo, original) in _pairs(engine)


def test_a_repeat_pasted_with_decomposed_accents_is_found(engine, db_url, monkeypatch):
    """Text pasted from macOS may spell "ü" as "u" + a combining mark; the city's name is
    the claim's rarest word and must still be one word."""
    monkeypatch.setattr("tracker.matching.POSTINGS", 2)
    monkeypatch.setattr("tracker.matching.PG_POSTINGS", 2)
    composed = "Police in Zürich said burglaries fell by 12 percent in 2023."
    decomposed = unicodedata.normalize("NFD", composed)
    fillers = [composed.replace("Zürich", city) for city in ("Boston", "Denver", "Austin")]
    _import(engine, db_url, *fillers, composed, decomposed)
    assert (decomposed, composed) in _pairs(engine)


def test_a_short_repeat_of_common_words_is_found_among_many(engine, db_url, monkeypatch):
    """When more claims hold all of a short claim's words than are ranked, its very text
    is still found."""
    monkeypatch.setattr("tracker.matching.RANKED", 2)
    monkeypatch.setattr("tracker.matching.CANDIDATES", 1)
    short = "Inflation rose 9 percent."
    longer = [f"In {y}, inflation rose 9 percent as officials warned." for y in range(2001, 2006)]
    _import(engine, db_url, *longer, short, f"Breaking news. {short}")
    assert (short, short) in _pairs(engine), _pairs(engine)


def test_claims_with_other_numbers_or_a_negation_are_never_linked_only_suggested(engine, db_url):
    """'Fell to 3.1 percent' and 'fell to 8.1 percent' share almost every word; linking them
    would let one verdict cover both."""
    base = "The unemployment rate fell to 3.1 percent in May, the lowest level since 1969."
    other_number = base.replace("3.1", "8.1")
    negated = base.replace("fell to", "did not fall to")
    _import(engine, db_url, base, other_number, negated)
    with Session(engine) as session:
        states = {
            (session.get(Claim, m.claim_id).text, session.get(Claim, m.other_id).text): m.state
            for m in session.exec(select(ClaimMatch))
        }
    assert states[(other_number, base)] == "suggested"
    assert states[(negated, base)] == "suggested"
    assert "linked" not in states.values()
    assert all(len(cluster_of(engine, c.id)) == 1 for c in _import(engine, db_url).values())


def test_two_workers_committing_out_of_order_still_match_their_claims(engine, db_url):
    """On PostgreSQL a worker's claim may get the smaller id and commit after another
    worker's claim was compared: the pair is still compared, once."""
    import pytest

    from tracker.ingest import add_article
    from tracker.matching import match_pending

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite gives ids in commit order (one writer at a time): no such race")

    def claim(article_id: int) -> Claim:
        return Claim(article_id=article_id, text=SHARED, quote=SHARED, quote_start=0,
                     quote_end=len(SHARED), checkworthiness=0.9)  # fmt: skip

    first, _ = add_article(engine, ArticleCreate(text=f"{SHARED} One.", title="First"))
    second, _ = add_article(engine, ArticleCreate(text=f"{SHARED} Two.", title="Second"))
    slow = Session(engine)  # worker 1: its claim gets the smaller id, then it stalls
    early = claim(first.id)
    slow.add(early)
    slow.flush()
    with Session(engine) as session:  # worker 2 stores the larger id and commits first
        late = claim(second.id)
        session.add(late)
        session.commit()
        late_id = session.exec(select(Claim.id).where(Claim.article_id == second.id)).one()
    assert early.id < late_id
    match_pending(engine, 0.75, 0.9)  # compares the later claim: the earlier one is unseen
    slow.commit()
    slow.close()
    match_pending(engine, 0.75, 0.9)

    assert _pairs(engine) == {(SHARED, SHARED)}
    with Session(engine) as session:
        matches = session.exec(select(ClaimMatch)).all()
        waiting = session.exec(select(Claim).where(Claim.matched_at.is_(None))).all()
    assert len(matches) == 1 and waiting == []


def _store(engine, text: str, title: str) -> int:
    """An article with one claim, stored without matching (as an import's writer does)."""
    from tracker.ingest import add_article

    article, _ = add_article(engine, ArticleCreate(text=f"{text} ({title})", title=title))
    with Session(engine) as session:
        claim = Claim(article_id=article.id, text=text, quote=text, quote_start=0,
                      quote_end=len(text), checkworthiness=0.9)  # fmt: skip
        session.add(claim)
        session.commit()
        return claim.id


def test_a_long_running_matcher_sees_claims_another_matcher_compared(engine, db_url):
    """A matcher keeps its word index between rounds; a claim stored and compared by
    another process meanwhile must still be found as the repeat of a later claim."""
    from tracker.matching import LiveIndex, match_pending

    live = LiveIndex()
    first = _store(engine, SHARED, "First")  # its words now in this matcher's index
    match_pending(engine, 0.75, 0.95, live=live)
    second = _store(engine, SHARED, "Second")
    match_pending(engine, 0.75, 0.95)  # another process's matcher compares it
    third = _store(engine, SHARED, "Third")
    match_pending(engine, 0.75, 0.95, live=live)
    links = {(m.claim_id, m.other_id) for m in _all_matches(engine) if m.state == "linked"}
    assert links == {(second, first), (third, first), (third, second)}


def test_a_claim_deleted_after_the_matcher_read_it_is_never_matched(engine, db_url):
    """A re-extraction deletes claims the matcher's index still lists: a later repeat of
    one must not be matched with it (nor fail), and the claim replacing it is found."""
    from tracker.matching import LiveIndex, match_pending

    live = LiveIndex()
    gone = _store(engine, SHARED, "First")
    match_pending(engine, 0.75, 0.95, live=live)
    with Session(engine) as session:
        session.delete(session.get(Claim, gone))
        session.commit()
    kept = _store(engine, SHARED, "Second")
    repeat = _store(engine, SHARED, "Third")
    match_pending(engine, 0.75, 0.95, live=live)
    assert _id_pairs(engine) == {(repeat, kept)}


def test_a_repeat_ranked_behind_many_claims_of_the_same_article_is_found(
    engine, db_url, monkeypatch
):
    """Claims of the article itself are never matches but may take the first places:
    the repeat ranked behind them must still be read and compared."""
    from tracker.ingest import add_article
    from tracker.matching import LiveIndex, match_pending

    monkeypatch.setattr("tracker.matching.CANDIDATES", 10)  # 20 ranked, the best 18 read
    home, _ = add_article(engine, ArticleCreate(text=f"{SHARED} Home.", title="Home"))
    with Session(engine) as session:
        for n in range(18):  # the article's own look-alikes, stored first
            text = f"{SHARED} Figure {n}."
            session.add(Claim(article_id=home.id, text=text, quote=text, quote_start=0,
                              quote_end=len(text), checkworthiness=0.5))  # fmt: skip
        session.commit()
    elsewhere = _store(engine, SHARED, "Elsewhere")
    with Session(engine) as session:
        last = Claim(article_id=home.id, text=SHARED, quote=SHARED, quote_start=0,
                     quote_end=len(SHARED), checkworthiness=0.5)  # fmt: skip
        session.add(last)
        session.commit()
        last_id = last.id
    match_pending(engine, 0.75, 0.95, live=LiveIndex())
    assert (last_id, elsewhere) in _id_pairs(engine)


def _all_matches(engine):
    with Session(engine) as session:
        return session.exec(select(ClaimMatch)).all()


def _id_pairs(engine) -> set[tuple[int, int]]:
    """(claim id, earlier claim id) of every match recorded (_pairs: their texts)."""
    return {(m.claim_id, m.other_id) for m in _all_matches(engine)}


def test_a_reworded_repeat_is_found_among_more_claims_holding_its_rarest_words_than_ranked(
    engine, db_url, monkeypatch
):
    """More earlier claims hold a claim's three rarest words than are ranked, and none
    holds all its words: the rewording holding most of them must be among the ranked."""
    import pytest

    from tracker.matching import LiveIndex, match_pending

    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL ranks the claims holding the three words by those words "
                    "alone (ts_rank), the oldest first among equals: a known limit")  # fmt: skip
    monkeypatch.setattr("tracker.matching.CANDIDATES", 5)  # 10 ranked
    rare, other = "Zephyrine Quillbrook Marrowdale", "Ashcombe Thistlewick Brindlemoor"
    claim = f"{rare} {other} Pennywhistle."
    for n in range(12):
        _store(engine, f"{rare} mentioned item{n} elsewhere.", f"Rare {n}")
    for n in range(14):
        _store(engine, f"{other} Pennywhistle listed entry{n} today.", f"Other {n}")
    reworded = _store(engine, f"{rare} {other}.", "Reworded")
    new = _store(engine, claim, "New")
    match_pending(engine, 0.75, 0.95, live=LiveIndex())
    assert (new, reworded) in _id_pairs(engine)
