"""Attacks on the SQLite matcher's live word index (tracker.matching.LiveIndex): wherever
the old full-text path finds a repeat, the live index must find it too."""

from __future__ import annotations

import pytest

from tests.test_matching import SHARED, _id_pairs, _store
from tracker.db import create_db_engine, migrate
from tracker.matching import LiveIndex, match_pending


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def test_claims_stored_while_a_round_starts_are_matched_with_each_other(sqlite_engine, monkeypatch):
    """Another process (the import feeding the matcher, a second `tracker import`) may
    commit claims after a round read how far its index goes and before it read the
    waiting claims: a repeat among those must still be found, not marked compared
    against an index that lacks its twin."""
    catch_up = LiveIndex.catch_up
    stored: list[int] = []

    def then_two_imports_commit(self, session):
        catch_up(self, session)
        if not stored:
            stored.extend([_store(sqlite_engine, SHARED, "First"),
                           _store(sqlite_engine, SHARED, "Second")])  # fmt: skip

    _store(sqlite_engine, "The council approved a budget of 40 million dollars.", "Earlier")
    monkeypatch.setattr(LiveIndex, "catch_up", then_two_imports_commit)
    live = LiveIndex()
    for _ in range(2):  # the matcher process polls again when a call finds nothing left
        match_pending(sqlite_engine, 0.75, 0.95, live=live)
    assert (stored[1], stored[0]) in _id_pairs(sqlite_engine)


@pytest.mark.parametrize(
    ("plain", "marked"),
    [
        # Greek in capitals is written without its accents (tonos); FTS5 does not fold them
        (
            "Η ανεργια μειωθηκε δραματικα φετος, λεει η κυβερνηση.",
            "Η ανεργία μειώθηκε δραματικά φέτος, λέει η κυβέρνηση.",
        ),
        # Russian writes ё as е or not; FTS5 keeps them apart
        ("Летчик черного самолета пришел.", "Лётчик чёрного самолёта пришёл."),
    ],
    ids=["greek-tonos", "russian-yo"],
)
def test_a_repeat_is_found_when_another_spelling_of_its_words_was_read_first(
    sqlite_engine, plain, marked
):
    """FTS5 keeps "ά" and "α" (or "ё" and "е") as different letters: the live index must
    not file both spellings under one word, or the claims of the spelling read second
    from FTS5 are never candidates."""
    _store(sqlite_engine, plain, "Headline")  # its words read from FTS5 first
    original = _store(sqlite_engine, marked, "Original")
    repeat = _store(sqlite_engine, marked, "Repeat")
    match_pending(sqlite_engine, 0.75, 0.95, live=LiveIndex())
    assert (repeat, original) in _id_pairs(sqlite_engine)


def test_the_live_index_files_words_apart_exactly_where_fts5_does():
    """Every Latin, Greek and Cyrillic letter: two letters FTS5 keeps apart must get two
    keys (one key would hide claims, as above). ǡ is the one Latin letter whose marks
    FTS5 keeps while Python's decomposition gives a plain "a"."""
    import sqlite3
    import unicodedata

    from tracker.matching import _fold, _terms

    letters = sorted(
        {unicodedata.normalize("NFC", chr(c).lower()) for c in [*range(0xC0, 0x530),
                                                                 *range(0x1E00, 0x2000)]}
    )  # fmt: skip
    words = [f"q{ch}q" for ch in letters if len(_terms(f"q{ch}q")) == 1 and ch != "ǡ"]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", enumerate(words))
    tokens: dict[int, list[str]] = {}
    for term, doc in db.execute("SELECT term, doc FROM v"):
        tokens.setdefault(doc, []).append(term)
    apart: dict[str, set[str]] = {}
    for i, word in enumerate(words):
        if len(tokens.get(i, [])) == 1:
            apart.setdefault(_fold(_terms(word)[0]), set()).add(tokens[i][0])
    assert {key: fts for key, fts in apart.items() if len(fts) > 1} == {}
