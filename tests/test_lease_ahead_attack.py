"""Attacks on leasing articles ahead of a free worker (tracker/batch.py `lease_ahead`):
a run that stops early must end, say why, and hold no lease afterwards."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import Session, select

from tests.conftest import make_settings
from tests.fakellm import FakeLLM, first_sentence_claim
from tests.test_import_batch import _articles
from tracker.batch import run_batch
from tracker.db import StorageError, get_engine
from tracker.models import Article
from tracker.readers import read_articles


def _run(engine, items, settings, *, timeout: float = 20, **kwargs):
    async def go():
        return await asyncio.wait_for(run_batch(engine, items, settings, **kwargs), timeout)

    return asyncio.run(go())


def _leased(engine) -> list[int]:
    with Session(engine) as session:
        return list(session.exec(select(Article.id).where(Article.lease_owner.is_not(None))))


@pytest.mark.parametrize("concurrency", [4, 8])
def test_the_database_going_away_while_reading_ends_the_run(tmp_path, monkeypatch, concurrency):
    """Looking an input up fails for good (the server is gone): the run stops with the
    reason. Only one worker saw the stop; the others waited on the leased queue forever."""
    import tracker.batch

    find_job = tracker.batch.find_job
    looked_up = []

    def flaky(engine, item):
        looked_up.append(item)
        if len(looked_up) >= 3:
            raise StorageError("the database file was deleted")
        return find_job(engine, item)

    monkeypatch.setattr(tracker.batch, "find_job", flaky)
    folder = _articles(tmp_path / "in", 10)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = make_settings(
            f"sqlite:///{tmp_path / 'x.db'}", openai_base_url=fake.base_url, max_retries=0
        )
        engine = get_engine(settings.database_url)
        report = _run(engine, read_articles([folder]), settings, concurrency=concurrency)
    assert report.stopped == "the database cannot be written: the database file was deleted"
    assert _leased(engine) == []


def test_a_bug_while_leasing_ahead_is_raised_not_a_hang(tmp_path, monkeypatch):
    """An unexpected error in the step that leases ahead (here: deciding what a stored
    article needs) surfaces, as it did when the workers leased; the workers waited for the
    next leased article forever."""
    import tracker.batch

    folder = _articles(tmp_path / "in", 6)
    with FakeLLM(respond=first_sentence_claim) as fake:
        settings = make_settings(
            f"sqlite:///{tmp_path / 'x.db'}", openai_base_url=fake.base_url, max_retries=0
        )
        engine = get_engine(settings.database_url)
        _run(engine, read_articles([folder]), settings, concurrency=4)
        ids = [a.id for a in Session(engine).exec(select(Article)).all()]

        def broken(*args, **kwargs):
            raise RuntimeError("a bug in nothing_to_do")

        monkeypatch.setattr(tracker.batch, "nothing_to_do", broken)
        with pytest.raises(RuntimeError, match="a bug in nothing_to_do"):
            _run(engine, ids, settings, concurrency=4)
    assert _leased(engine) == []
