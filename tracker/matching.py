"""The same claim in many articles: find earlier claims that say the same thing, suggest or
link them, and keep confirmed matches together as clusters.

Two stages: the full-text index proposes candidates (SQLite FTS5 ranked by BM25, or
PostgreSQL text search ranked by ts_rank), then rapidfuzz scores each candidate against
the new claim (0-1). At or above TRACKER_MATCH_SUGGEST a match is suggested to reviewers;
at or above TRACKER_MATCH_LINK it is linked into the same cluster at once.
"""

from __future__ import annotations

import gc
import heapq
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from rapidfuzz import fuzz
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker.db import session_scope
from tracker.models import Article, Claim, ClaimMatch, utcnow

CANDIDATES = 30
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "that",
        "this",
        "with",
        "from",
        "have",
        "has",
        "had",
        "was",
        "were",
        "are",
        "but",
        "not",
        "you",
        "his",
        "her",
        "its",
        "our",
        "their",
        "they",
        "them",
        "will",
        "would",
        "could",
        "should",
        "said",
        "says",
        "about",
        "into",
        "over",
        "than",
        "then",
        "there",
        "been",
        "more",
        "most",
        "also",
        "just",
        "some",
        "such",
        "what",
        "when",
        "which",
        "who",
        "whom",
        "why",
        "how",
        "all",
        "any",
        "can",
        "may",
    ]
)


def similarity(a: str, b: str) -> float:
    """How nearly two claims say the same thing, 0-1 (word order and extra words matter
    less than shared words)."""
    a, b = a.lower(), b.lower()
    return (fuzz.token_set_ratio(a, b) + fuzz.token_sort_ratio(a, b)) / 200


_NOISE = re.compile(r"https?://\S+|pic\.twitter\.com/\S+|@\w+|#")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot|without)\b|n[’']t\b",
    re.IGNORECASE,
)


def conflict(a: str, b: str) -> str | None:
    """Why two claims that share most of their words may still say different things
    ("fell to 3.1 percent" / "fell to 8.1 percent", "did not fall"): such a pair is never
    linked automatically, only suggested, with the reason shown."""
    numbers = [{n.replace(",", "") for n in _NUMBER.findall(text)} for text in (a, b)]
    if numbers[0] != numbers[1]:
        return "the numbers differ"
    if bool(_NEGATION.search(a)) != bool(_NEGATION.search(b)):
        return "one of them is negated"
    return None


def _terms(text: str, most: int = 40) -> list[str]:
    # Composed letters, as the indexes see them: "Zu\u0308rich" is one word, not "zu" + "rich"
    # (text pasted from macOS), and marks that compose with nothing are dropped.
    text = unicodedata.normalize("NFC", _NOISE.sub(" ", text.lower()))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = [w for w in re.findall(r"\w{3,}", text) if w not in _STOP]
    return sorted(set(words), key=lambda w: (-len(w), w))[:most]  # longer words are rarer


class Candidate(NamedTuple):
    """What comparing needs of a stored claim (loading whole rows for the ~60 candidates
    of every new claim cost more than the comparing)."""

    id: int
    article_id: int
    text: str
    matched_at: Any


def candidates(
    session: Session, text: str, *, exclude_article: int | None = None, stored: bool = False
) -> list[Claim]:
    """Stored claims sharing the most distinctive words with `text`, best first (`stored`:
    `text` is itself in the index, so it is not counted as holding its own words)."""
    found = _candidates(session, text, exclude_article, stored)
    claims = {
        c.id: c for c in session.exec(select(Claim).where(Claim.id.in_([f.id for f in found])))
    }
    return [claims[f.id] for f in found if f.id in claims]


def _candidates(
    session: Session,
    text: str,
    exclude_article: int | None,
    stored: bool,
    live: LiveIndex | None = None,
    below: int | None = None,
) -> list[Candidate]:
    """`live` (SQLite's matcher): answer from its postings, claims with ids under `below`."""
    terms = _terms(text)
    if not terms:
        return []
    sqlite = session.get_bind().dialect.name == "sqlite"
    index: _Index = (_Fts5 if sqlite else _TextSearch)(session, itself=int(stored))
    if live is not None and sqlite and below is not None:
        index = _LiveView(live, index, below)
    try:
        ids = _candidate_ids(index, text, terms)
        # Rows of the best ids first (reading a row costs as much as ranking it): the
        # rest only when claims of the article itself took places.
        first = CANDIDATES + 8
        rows = index.rows(ids[:first]) if ids else []
        if len(ids) > first and sum(row[1] != exclude_article for row in rows) < CANDIDATES:
            rows += index.rows(ids[first:])
    finally:
        index.close()
    order = {claim_id: i for i, claim_id in enumerate(ids)}
    found = sorted((Candidate(*row) for row in rows), key=lambda c: order[c.id])
    return [c for c in found if c.article_id != exclude_article][:CANDIDATES]


# Weight of rapidfuzz's similarity against the full-text rank when ranking candidates;
# chosen, with RAREST, on the CLEF 2020 train split (MAP@5 0.796 there).
RERANK_WEIGHT = 0.4


def rank(session: Session, text: str, limit: int = 5) -> list[tuple[Claim, float]]:
    """The stored claims most like `text`, best first: the full-text rank blended with
    rapidfuzz's similarity (the score returned)."""
    found = candidates(session, text)
    blended = [
        (
            claim,
            (1 - RERANK_WEIGHT) * (1 - i / len(found))
            + RERANK_WEIGHT * similarity(text, claim.text),
        )
        for i, claim in enumerate(found)
    ]
    return sorted(blended, key=lambda pair: -pair[1])[:limit]


RAREST = 16  # query terms kept: the rarest in the index (16 chosen on CLEF 2020 train)


def _candidate_ids(index: _Index, text: str, terms: list[str]) -> list[int]:
    """Candidate claim ids, best first, reading a bounded number of postings. A repeat
    holds all of the claim's rarest words: claims holding the three rarest come first (all
    the words, when three are too common to single it out). Unless that finds a few, claims
    holding any of the rarest words follow, ranked; only as many words as fit the budget."""
    terms = index.searchable(terms)
    counts = {term: index.count(term, index.budget) for term in terms}
    ranked = sorted((term for term in terms if counts[term]), key=lambda term: counts[term])
    if not ranked:
        return []
    ids = index.ids(ranked[:3], every=True)
    if len(ids) == CANDIDATES * 2 and len(ranked) > 3:  # too many hold three: narrow down
        ids = _merge(index.ids(ranked, every=True), ids)
    elif len(ids) == CANDIDATES * 2 and len(ranked) > 1:  # few words, all common: its very
        ids = _merge(index.same_text(text, ranked), ids)  # text first (one word: too costly)
    if len(ids) < 5:
        chosen, total = [], 0
        for term in ranked[:RAREST]:
            if chosen and total + counts[term] > index.budget:
                break
            chosen.append(term)
            total += counts[term]
        ids = _merge(ids, index.ids(chosen, every=False))
    return ids


def _merge(first: list[int], then: list[int]) -> list[int]:
    seen = set(first)
    return first + [claim_id for claim_id in then if claim_id not in seen]


class _Index(Protocol):
    budget: int  # postings a ranked query may read

    def searchable(self, terms: list[str]) -> list[str]: ...
    def count(self, term: str, cap: int) -> int: ...
    def ids(self, terms: list[str], *, every: bool) -> list[int]: ...
    def same_text(self, text: str, terms: list[str]) -> list[int]: ...
    def rows(self, ids: list[int]) -> list[tuple[Any, ...]]: ...  # Candidate's columns
    def close(self) -> None: ...


# How many claims hold a common word changes slowly and only steers which words are rarest,
# so counts of COMMON or more are remembered for the process (a run asks for the same common
# words claim after claim); rare words, whose counts decide whether a repeat is found, are
# always counted afresh.
COMMON = 100
_common_counts: dict[tuple[str, str], int] = {}


def _remembered(database: str, term: str) -> int | None:
    return _common_counts.get((database, term))


def _remember(database: str, term: str, count: int) -> None:
    if count >= COMMON:
        if len(_common_counts) > 100_000:
            _common_counts.clear()
        _common_counts[(database, term)] = count


# Postings a ranked SQLite query may read. A term's weight in BM25 falls with the number
# of claims holding it, so the rarest terms decide the ranking; reading the long posting
# lists of common words costs time (hundreds of ms at a million claims) and changes little.
POSTINGS = 2_000


class _Fts5:
    """SQLite: the claim_fts index (BM25 ranking built in)."""

    def __init__(self, session: Session, itself: int) -> None:
        self.session, self.budget = session, POSTINGS
        self.itself = itself  # 1 when the claim searched for is in the index already
        # The driver's own cursor, in the session's transaction: dozens of tiny counts per
        # claim cost more in SQLAlchemy's statement handling than in SQLite.
        connection = session.connection()
        self.database = str(connection.engine.url)
        self.cursor = connection.connection.driver_connection.cursor()

    def searchable(self, terms: list[str]) -> list[str]:
        return terms

    def count(self, term: str, cap: int) -> int:
        """How many other claims hold `term`, counting no further than `cap` (bounded
        cost)."""
        if (known := _remembered(self.database, term)) is not None:
            return min(cap, known)
        self.cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM claim_fts WHERE claim_fts MATCH ? LIMIT ?)",
            (f'"{term}"', cap + self.itself),
        )
        found = max(0, self.cursor.fetchone()[0] - self.itself)
        _remember(self.database, term, found)
        return found

    def ids(self, terms: list[str], *, every: bool) -> list[int]:
        query = (" AND " if every else " OR ").join(f'"{term}"' for term in terms)
        self.cursor.execute(
            "SELECT rowid FROM claim_fts WHERE claim_fts MATCH ? ORDER BY rank LIMIT ?",
            (query, CANDIDATES * 2),
        )
        return [row[0] for row in self.cursor.fetchall()]

    def same_text(self, text: str, terms: list[str]) -> list[int]:
        statement = sa.text(
            "SELECT id FROM claim WHERE text = :text AND id IN "
            "(SELECT rowid FROM claim_fts WHERE claim_fts MATCH :q) LIMIT :n"
        ).bindparams(text=text, q=" AND ".join(f'"{t}"' for t in terms), n=CANDIDATES * 2)
        return [row[0] for row in self.session.exec(statement)]

    def rows(self, ids: list[int]) -> list[tuple[Any, ...]]:
        marks = ",".join("?" * len(ids))
        return self.cursor.execute(
            f"SELECT id, article_id, text, matched_at FROM claim WHERE id IN ({marks})", ids
        ).fetchall()

    def close(self) -> None:
        self.cursor.close()


def _fold(term: str) -> str:
    """A word as FTS5's tokenizer keeps it (remove_diacritics 2): "zürich" is "zurich"."""
    if term.isascii():
        return term
    return "".join(map(_fold_letter, term))


@cache
def _fold_letter(letter: str) -> str:
    """FTS5 strips the marks of Latin letters only: "ά" and "α", "ё" and "е" stay two
    letters there, so they must stay two here (one key for both would hide the claims of
    the spelling read from FTS5 second)."""
    base, *marks = unicodedata.normalize("NFD", letter)
    if base.isascii() and marks and all(unicodedata.combining(m) for m in marks):
        return base
    return letter


class LiveIndex:
    """The SQLite matcher's own index of which claims hold which uncommon words, kept for
    the life of the matcher process.

    Comparing a claim needs the claims holding each of its rarer words; asking FTS5 for
    them (counts, then ranked queries) cost ~4 ms a claim, though a run's claims ask for
    the same words again and again. Here a word's claims are read from FTS5 once, then
    every claim stored since is added as it appears: each round first reads the claims
    stored since the last (all of them, whoever stored them), so a word's postings are
    those of every claim up to `through`. On SQLite ids are given in commit order (one
    writer) and never reused (migration 0006), and a claim is compared only with smaller
    ids, all of which are in. Words in more than `budget` claims are only counted, as FTS5
    does for them (they steer little). Claims deleted since (a re-extraction) stay in the
    postings: they are dropped when the candidates' rows are read."""

    def __init__(self, budget: int | None = None, most: int = 2_000_000) -> None:
        self.budget, self.most = budget or POSTINGS, most
        self.postings: dict[str, set[int]] = {}
        self.common: dict[str, int] = {}  # word -> claims holding it (over the budget)
        self.through = 0  # every claim with an id up to this is in the postings held
        self.size = 0

    def catch_up(self, session: Session) -> None:
        """Add the claims stored since the last round (or start afresh after a gap too
        big to be worth reading claim by claim)."""
        cursor = session.connection().connection.driver_connection.cursor()
        try:
            top = cursor.execute("SELECT coalesce(max(id), 0) FROM claim").fetchone()[0]
            if top - self.through > 20_000 or top < self.through:  # (a restored backup)
                self.postings.clear()
                self.size = 0
            elif top > self.through and self.postings:
                rows = cursor.execute(
                    "SELECT id, text, quote FROM claim WHERE id > ? AND id <= ?",
                    (self.through, top),
                )
                self.add_all((claim_id, f"{text} {quote}") for claim_id, text, quote in rows)
            self.through = top
        finally:
            cursor.close()

    def add_all(self, claims: Iterable[tuple[int, str]]) -> None:
        for claim_id, text in claims:
            for term in _terms(text, most=len(text)):
                key = _fold(term)
                held = self.postings.get(key)
                if held is not None and claim_id not in held:
                    held.add(claim_id)
                    self.size += 1
                    if len(held) > self.budget:  # it became common: count it, no more
                        self.common[key] = len(held)
                        del self.postings[key]
                        self.size -= len(held)

    def lookup(self, term: str, cursor: Any) -> set[int] | int:
        """The claims holding `term` (up to `through`), or how many when over the budget."""
        key = _fold(term)
        if (held := self.postings.get(key)) is not None:
            return held
        if (count := self.common.get(key)) is not None:
            return count
        phrase = f'"{term}"'
        count = cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM claim_fts WHERE claim_fts MATCH ? "
            "AND rowid <= ? LIMIT ?)",
            (phrase, self.through, self.budget + 1),
        ).fetchone()[0]
        if count > self.budget:
            self.common[key] = count
            return count
        if self.size + count > self.most:  # memory: start afresh
            self.postings.clear()
            self.size = 0
        rows = cursor.execute(
            "SELECT rowid FROM claim_fts WHERE claim_fts MATCH ? AND rowid <= ?",
            (phrase, self.through),
        )
        held = self.postings[key] = {row[0] for row in rows}
        self.size += len(held)
        return held


class _LiveView:
    """The live index as one claim's search sees it: claims with smaller ids only, ranked
    by the summed rarity (BM25's idf) of the words they share with it. What it cannot
    answer from postings (common words, exact text) goes to FTS5."""

    def __init__(self, live: LiveIndex, fts: _Fts5, below: int) -> None:
        self.live, self.fts, self.below = live, fts, below
        self.budget = fts.budget
        self.held: dict[str, set[int] | int] = {}

    def _held(self, term: str) -> set[int] | int:
        if term not in self.held:
            self.held[term] = self.live.lookup(term, self.fts.cursor)
        return self.held[term]

    def searchable(self, terms: list[str]) -> list[str]:
        return terms

    def count(self, term: str, cap: int) -> int:
        held = self._held(term)
        if isinstance(held, int):
            return min(cap, held)
        return min(cap, len(held) - (self.below in held))

    def ids(self, terms: list[str], *, every: bool) -> list[int]:
        postings = [self._held(term) for term in terms]
        if any(isinstance(held, int) for held in postings):
            return self.fts.ids(terms, every=every)  # a common word: FTS5 ranks it
        sets: list[set[int]] = postings  # type: ignore[assignment]
        want, below = CANDIDATES * 2, self.below
        if every:
            found = sorted(i for i in set.intersection(*sets) if i < below)
            if len(found) > want:  # too many hold them all: those holding most of the
                found = self._by_other_words(found, want)  # claim's other words first
            return found[:want]
        # Claims holding two or more of the words first, by the summed rarity of the words
        # they hold; then those holding one, rarest word first. (Counting in C: one pass
        # in Python over a few thousand postings cost more than the FTS5 query it replaces.)
        weights = self._rarity(sets)
        hits: Counter[int] = Counter()
        for held in sets:
            hits.update(held)
        hits.pop(below, None)
        found = [i for i, n in hits.items() if n > 1 and i < below]
        if found:
            found = _best(found, sets, weights, want)
        for k in sorted(range(len(sets)), key=lambda k: -weights[k]):
            if len(found) >= want:
                break
            single = sorted(i for i in sets[k] if hits[i] == 1 and i < below)
            found += single[: want - len(found)]
        return found[:want]

    def _by_other_words(self, found: list[int], want: int) -> list[int]:
        """The `want` claims of `found` holding the most (by rarity) of the words looked up
        for this claim, as BM25 would rank them; then the oldest first."""
        sets = [held for held in self.held.values() if isinstance(held, set)]
        return _best(found, sets, self._rarity(sets), want)

    def _rarity(self, sets: list[set[int]]) -> list[float]:
        """BM25's idf of each word, from how many claims hold it."""
        total = max(self.live.through, 1)
        return [math.log(1 + (total - len(s) + 0.5) / (len(s) + 0.5)) for s in sets]

    def same_text(self, text: str, terms: list[str]) -> list[int]:
        return self.fts.same_text(text, terms)

    def rows(self, ids: list[int]) -> list[tuple[Any, ...]]:
        return self.fts.rows(ids)

    def close(self) -> None:
        self.fts.close()


def _best(found: list[int], sets: list[set[int]], weights: list[float], want: int) -> list[int]:
    """The `want` ids of `found` whose words (`sets`, each a word's claims) weigh most
    together; the oldest first among equals."""
    score = {i: sum(w for s, w in zip(sets, weights, strict=True) if i in s) for i in found}
    return heapq.nsmallest(want, found, key=lambda i: (-score[i], i))


# PostgreSQL ranks with ts_rank, which re-parses each matching claim (~25 us a claim), so
# it gets a smaller budget, and no more than RANKED claims are ranked at all.
PG_POSTINGS = 500
RANKED = 500
_DOCUMENT = "to_tsvector('english'::regconfig, text || ' ' || quote)"  # as the GIN index
_MATCHES = f"{_DOCUMENT} @@ plainto_tsquery('english', :term)"


# Core, not ORM: the ORM's statement handling cost more than the query (60 rows a claim).
_CANDIDATE_ROWS = sa.select(Claim.id, Claim.article_id, Claim.text, Claim.matched_at).where(
    Claim.id.in_(sa.bindparam("ids", expanding=True))
)


class _TextSearch:
    """PostgreSQL: full-text search over the GIN expression index of migration 0003."""

    def __init__(self, session: Session, itself: int) -> None:
        self.session, self.budget = session, PG_POSTINGS
        self.itself = itself  # 1 when the claim searched for is in the index already
        self.unlisted: int | None = None
        self.seqscan_off = False

    def searchable(self, terms: list[str]) -> list[str]:
        """The terms that are not PostgreSQL stop words."""
        statement = sa.text(
            "SELECT w FROM unnest(CAST(:terms AS text[])) WITH ORDINALITY AS t(w, i) "
            "WHERE numnode(plainto_tsquery('english', w)) > 0 ORDER BY i"
        ).bindparams(terms=terms)
        return [row[0] for row in self.session.exec(statement)]

    def count(self, term: str, cap: int) -> int:
        """How many other claims hold `term`, counting no further than `cap`. For the words
        the index statistics list as common, the planner's estimate (no posting read); any
        other word gets the same estimate from the planner, present or absent, so it is
        counted (cheap: an uncommon word has a short posting list)."""
        database = str(self.session.get_bind().url)
        if (known := _remembered(database, term)) is not None:
            return min(cap, known)
        if (estimate := self._estimate(term)) > self._unlisted_estimate():
            _remember(database, term, estimate)
            return min(cap, estimate)
        statement = sa.text(
            f"SELECT count(*) FROM (SELECT 1 FROM claim WHERE {_MATCHES} LIMIT :n) AS found"
        ).bindparams(term=term, n=cap + self.itself)
        found = max(0, self.session.exec(statement).one()[0] - self.itself)
        _remember(database, term, found)
        return found

    def _estimate(self, term: str) -> int:
        # The word is written into the statement, not bound: a prepared statement may get a
        # generic plan, whose estimate is the same for every word.
        literal = "'" + term.replace("'", "''") + "'"  # words are \w+ already; still quoted
        statement = sa.text(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM claim WHERE {_DOCUMENT} @@ "
            f"plainto_tsquery('english', {literal})"
        )
        plan = self.session.exec(statement).one()[0]
        return int(plan[0]["Plan"]["Plan Rows"])

    def _unlisted_estimate(self) -> int:
        """The planner's estimate for a word its statistics do not list."""
        if self.unlisted is None:
            self.unlisted = self._estimate("qxzjvkwq")
        return self.unlisted

    def ids(self, terms: list[str], *, every: bool) -> list[int]:
        query = (" & " if every else " | ").join(terms)
        statement = sa.text(
            f"SELECT id FROM (SELECT id, text, quote FROM claim WHERE {_DOCUMENT} @@ "
            f"to_tsquery('english', :q) LIMIT :ranked) AS found "
            f"ORDER BY ts_rank({_DOCUMENT}, to_tsquery('english', :q)) DESC, id LIMIT :n"
        ).bindparams(q=query, ranked=RANKED, n=CANDIDATES * 2)
        return self._by_index(statement)

    def same_text(self, text: str, terms: list[str]) -> list[int]:
        statement = sa.text(
            f"SELECT id FROM claim WHERE {_DOCUMENT} @@ to_tsquery('english', :q) "
            "AND text = :text LIMIT :n"
        ).bindparams(q=" & ".join(terms), text=text, n=CANDIDATES * 2)
        return self._by_index(statement)

    def rows(self, ids: list[int]) -> list[tuple[Any, ...]]:
        return list(self.session.connection().execute(_CANDIDATE_ROWS, {"ids": ids}).all())

    def _by_index(self, statement: Any) -> list[int]:
        """Run `statement` through the GIN index. With a LIMIT and a common word the planner
        prefers reading the table until enough rows match, re-parsing every claim on the
        way (124 ms instead of 25 at a million claims), so sequential scans are off while
        the search runs (set_config(..., true): this transaction only; close() restores)."""
        if not self.seqscan_off:
            self.session.exec(sa.text("SELECT set_config('enable_seqscan', 'off', true)"))
            self.seqscan_off = True
        return [row[0] for row in self.session.exec(statement)]

    def close(self) -> None:
        if self.seqscan_off:
            self.session.exec(sa.text("SELECT set_config('enable_seqscan', 'on', true)"))


@dataclass
class Match:
    claim: Claim
    score: float


def find_matches(
    session: Session,
    claim: Claim,
    threshold: float,
    compared: Callable[[Candidate], bool] | None = None,
    live: LiveIndex | None = None,
) -> list[Match]:
    """Earlier claims from other articles that say what `claim` says, best first.
    `compared`: which candidates to compare it with (by default those stored before it).
    `live`: the matcher's index, for the default rule (earlier is a smaller id)."""
    earlier = compared or (lambda other: claim.id is None or other.id < claim.id)
    below = claim.id if compared is None else None
    found = _candidates(session, claim.text, claim.article_id, claim.id is not None, live, below)
    scored = [
        (other.id, similarity(claim.text, other.text))
        for other in found
        if other.id != claim.id and earlier(other)
    ]
    scored = sorted(((i, s) for i, s in scored if s >= threshold), key=lambda pair: -pair[1])
    if not scored:
        return []
    claims = {
        c.id: c for c in session.exec(select(Claim).where(Claim.id.in_([i for i, _ in scored])))
    }
    return [Match(claims[i], score) for i, score in scored if i in claims]


def match_new_claims(session: Session, claims: list[Claim], suggest: float, link: float) -> int:
    """Record suggestions (and links) for claims in the caller's transaction; returns how
    many. (Imports leave this to `match_pending`, off the store's path.)"""
    found = {claim.id: find_matches(session, claim, suggest) for claim in claims}
    return _record(session, claims, found, link)


def _record(
    session: Session, claims: list[Claim], found: dict[int, list[Match]], link: float
) -> int:
    recorded = 0
    for claim in claims:
        for match in found.get(claim.id, []):
            agree = conflict(claim.text, match.claim.text) is None
            state = "linked" if match.score >= link and agree else "suggested"
            session.add(
                ClaimMatch(
                    claim_id=claim.id, other_id=match.claim.id, score=round(match.score, 4),
                    state=state,
                )
            )  # fmt: skip
            if state == "linked":
                _join(session, claim.id, match.claim.id)
            recorded += 1
    return recorded


# PostgreSQL advisory lock key for "a matcher is recording" (any fixed 64-bit number).
_MATCHER_LOCK = 0x7472_6163_6B65_72  # "tracker"


def match_pending(
    engine: Engine,
    suggest: float,
    link: float,
    *,
    batch: int = 50,
    stop: Callable[[], bool] | None = None,
    live: LiveIndex | None = None,
) -> int:
    """Compare the claims not compared yet with the earlier claims of other articles,
    oldest first, and record suggestions and links; returns how many claims were done.
    Claims of one import find each other, and every pair of claims is compared once.

    SQLite (one writer at a time, so a claim's id is given after every smaller id was
    committed): "earlier" is a smaller id, and the comparing (the costly part) runs outside
    the write transaction, so the import's writer is never held up. PostgreSQL (workers
    commit in any order, so a smaller id may become visible after a larger one was
    compared): one matcher at a time records, and "earlier" is a claim compared already.
    `live`: the index a long-running matcher keeps between calls (SQLite); else its own."""
    postgres = engine.dialect.name == "postgresql"
    live = live or LiveIndex()
    done = 0
    while not (stop and stop()):
        if postgres:
            found = _round_serialised(engine, suggest, link, batch)
        else:
            found = _round(engine, suggest, link, batch, live)
        if found is None:
            return done
        done += found
    return done


def match_until_stopped(url: str, suggest: float, link: float, stop: Any, parent: int) -> None:
    """The matcher process (tracker.batch starts it; here, so that it imports only what
    matching needs): compare new claims as they are stored, until told to stop and
    nothing is left (or the import that started it, process `parent`, is gone; its pid is
    given, not read here: an import killed while this process was starting would leave it
    matching forever under init)."""
    import signal

    from tracker.db import create_db_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the import, which stops this
    engine = create_db_engine(url)
    live = LiveIndex()  # kept from round to round
    try:
        while os.getppid() == parent:
            try:
                done = match_pending(engine, suggest, link, live=live)
            except Exception:  # the database restarted, a connection killed: try again soon
                done, pause = 0, 5.0
            else:
                pause = 0.2
            if done == 0:
                if stop.is_set():
                    return
                stop.wait(pause)
    finally:
        engine.dispose()


def matcher_process(url: str, suggest: float, link: float, stop: Any, parent: int) -> None:
    """The matcher process's target: match_until_stopped, then an end without the
    interpreter's last garbage collections walking its index (up to millions of postings:
    the import waited 0.1 s longer for this process). Its connections are closed by then."""
    match_until_stopped(url, suggest, link, stop, parent)
    gc.freeze()


def _round(engine: Engine, suggest: float, link: float, batch: int, live: LiveIndex) -> int | None:
    with Session(engine) as session:
        # Waiting claims first, then the index brought up to the newest claim: SQLite reads
        # outside a transaction, so claims committed between the two reads would otherwise
        # be compared with an index that lacks the claims just before them.
        waiting = _waiting(session, batch)
        live.catch_up(session)
        if not waiting:
            return None
        found = {c.id: find_matches(session, c, suggest, live=live) for c in waiting}
        session.expunge_all()
    with session_scope(engine) as session:
        still = _still_waiting(session, [claim.id for claim in waiting])
        return _record_round(session, [c for c in waiting if c.id in still], found, link)


def _round_serialised(engine: Engine, suggest: float, link: float, batch: int) -> int | None:
    with session_scope(engine) as session:
        session.exec(sa.text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_MATCHER_LOCK))
        waiting = _waiting(session, batch)
        if not waiting:
            return None
        in_round = {claim.id for claim in waiting}

        def compared_before(claim: Claim) -> Callable[[Candidate], bool]:
            return lambda other: (
                other.matched_at is not None or (other.id in in_round and other.id < claim.id)
            )

        found = {c.id: find_matches(session, c, suggest, compared_before(c)) for c in waiting}
        return _record_round(session, waiting, found, link)


def _waiting(session: Session, batch: int) -> list[Claim]:
    query = select(Claim).where(Claim.matched_at.is_(None)).order_by(Claim.id).limit(batch)
    return list(session.exec(query).all())


def _record_round(
    session: Session, claims: list[Claim], found: dict[int, list[Match]], link: float
) -> int:
    """Record the matches of these claims that still exist (a re-extraction may have
    replaced a matched claim meanwhile), and mark the claims compared."""
    others = {m.claim.id for matches in found.values() for m in matches}
    alive = set(session.exec(select(Claim.id).where(Claim.id.in_(others))).all())
    kept = {c.id: [m for m in found.get(c.id, []) if m.claim.id in alive] for c in claims}
    _record(session, claims, kept, link)
    session.exec(
        sa.update(Claim).where(Claim.id.in_([c.id for c in claims])).values(matched_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return len(claims)


def _still_waiting(session: Session, ids: list[int]) -> set[int]:
    """Which of these claims no other matcher has recorded (SQLite), held until the
    transaction ends: its write lock is taken first."""
    session.exec(sa.text("UPDATE claim SET id = id WHERE 0"))
    query = select(Claim.id).where(Claim.id.in_(ids), Claim.matched_at.is_(None))
    return set(session.exec(query).all())


def waiting_to_match(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(sa.func.count()).select_from(Claim).where(Claim.matched_at.is_(None))
        return session.exec(query).one()


def _join(session: Session, a: int, b: int) -> None:
    """Put claims a and b, with everything clustered with either, in one cluster."""
    session.flush()
    rows = session.exec(select(Claim.id, Claim.cluster_id).where(Claim.id.in_([a, b]))).all()
    clusters = {cluster for _, cluster in rows if cluster is not None}
    members = {a, b} | clusters
    target = min(members)
    session.exec(
        sa.update(Claim)
        .where(sa.or_(Claim.id.in_([a, b]), Claim.cluster_id.in_(clusters or {-1})))
        .values(cluster_id=target)
    )


def decide(engine: Engine, match_id: int, accept: bool, *, actor: str) -> ClaimMatch:
    """A reviewer confirms (joining the clusters) or rejects a suggested match."""
    from tracker.people import authorize

    with session_scope(engine) as session:
        actor = authorize(session, actor)
        match = session.get(ClaimMatch, match_id)
        if match is None:
            raise LookupError(f"no match with id {match_id}")
        if match.state != "suggested":
            raise ValueError(f"this match was already {match.state}")
        match.state = "confirmed" if accept else "rejected"
        match.decided_by, match.decided_at = actor, utcnow()
        session.add(match)
        if accept:
            _join(session, match.claim_id, match.other_id)
        session.flush()
        session.expunge(match)
        return match


def matches_of(engine: Engine, claim_id: int) -> list[tuple[ClaimMatch, Claim]]:
    """Every match of a claim, in either direction, with the other claim."""
    with Session(engine) as session:
        rows = session.exec(
            select(ClaimMatch)
            .where(sa.or_(ClaimMatch.claim_id == claim_id, ClaimMatch.other_id == claim_id))
            .order_by(ClaimMatch.score.desc())
        ).all()
        others = {
            c.id: c
            for c in session.exec(
                select(Claim).where(
                    Claim.id.in_(
                        [m.other_id if m.claim_id == claim_id else m.claim_id for m in rows]
                    )
                )
            )
        }
        return [(m, others[m.other_id if m.claim_id == claim_id else m.claim_id]) for m in rows]


@dataclass
class Related:
    """Another claim that says the same (a match, or a member of the same cluster), with
    what the desk decided about it and where it was said."""

    claim: Claim
    article_title: str | None
    outlet: str | None
    match: ClaimMatch | None  # None: clustered through other claims


def related(engine: Engine, claim_id: int) -> list[Related]:
    """The claim's matches (best first), then the rest of its cluster."""
    found = {other.id: match for match, other in matches_of(engine, claim_id)}
    members = [c.id for c in cluster_of(engine, claim_id) if c.id != claim_id]
    ids = list(found) + [i for i in members if i not in found]
    if not ids:
        return []
    with Session(engine) as session:
        rows = session.exec(
            select(Claim, Article.title, Article.outlet)
            .join(Article, Article.id == Claim.article_id)
            .where(Claim.id.in_(ids))
        ).all()
    by_id = {
        claim.id: Related(claim, title, outlet, found.get(claim.id))
        for claim, title, outlet in rows
    }
    return [by_id[i] for i in ids if i in by_id]


def cluster_of(engine: Engine, claim_id: int) -> list[Claim]:
    """The claims clustered with this one (itself included)."""
    with Session(engine) as session:
        claim = session.get(Claim, claim_id)
        if claim is None or claim.cluster_id is None:
            return [claim] if claim else []
        return list(
            session.exec(
                select(Claim).where(Claim.cluster_id == claim.cluster_id).order_by(Claim.id)
            ).all()
        )


def set_cluster_status(
    engine: Engine,
    claim_id: int,
    status: str,
    *,
    actor: str,
    seen: dict[int, int],
    note: str | None = None,
) -> int:
    """One verdict for the whole cluster, recorded in each claim's history, in one
    transaction: if any member changed since the reviewer saw it (`seen`: claim id ->
    version), or joined the cluster unseen, nothing is saved (StaleEdit). Returns how
    many claims changed."""
    from tracker.review import cluster_seen, set_statuses

    members = cluster_seen(engine, claim_id, seen)
    before = dict(seen)
    updated = set_statuses(
        engine, members, status, actor=actor, note=note,
        why=f"verdict for the cluster of claim {claim_id}",
    )  # fmt: skip
    return sum(1 for claim in updated if claim.version != before.get(claim.id))
