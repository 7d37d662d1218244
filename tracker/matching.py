"""The same claim in many articles: find earlier claims that say the same thing, suggest or
link them, and keep confirmed matches together as clusters.

Two stages: the full-text index proposes candidates (SQLite FTS5 ranked by BM25, or
PostgreSQL text search ranked by ts_rank), then rapidfuzz scores each candidate against
the new claim (0-1). At or above TRACKER_MATCH_SUGGEST a match is suggested to reviewers;
at or above TRACKER_MATCH_LINK it is linked into the same cluster at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from rapidfuzz import fuzz
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tracker.db import session_scope
from tracker.models import Claim, ClaimMatch, utcnow

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


def _terms(text: str, most: int = 12) -> list[str]:
    words = [w for w in re.findall(r"\w{3,}", text.lower()) if w not in _STOP]
    return sorted(set(words), key=lambda w: (-len(w), w))[:most]  # longer words are rarer


def candidates(session: Session, text: str, *, exclude_article: int | None = None) -> list[Claim]:
    """Stored claims sharing the most distinctive words with `text`, best first."""
    terms = _terms(text)
    if not terms:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        query = " OR ".join(f'"{t}"' for t in terms)
        ids = [
            row[0]
            for row in session.exec(
                sa.text(
                    "SELECT rowid FROM claim_fts WHERE claim_fts MATCH :q ORDER BY rank LIMIT :n"
                ).bindparams(q=query, n=CANDIDATES * 2)
            )
        ]
        claims = session.exec(select(Claim).where(Claim.id.in_(ids))).all() if ids else []
        order = {claim_id: i for i, claim_id in enumerate(ids)}
        claims = sorted(claims, key=lambda c: order[c.id])
    else:
        config = sa.literal_column("'english'::regconfig")
        document = sa.func.to_tsvector(
            config, Claim.text.concat(sa.literal_column("' '")).concat(Claim.quote)
        )
        tsquery = sa.func.to_tsquery(config, " | ".join(terms))
        claims = session.exec(
            select(Claim)
            .where(document.op("@@")(tsquery))
            .order_by(sa.func.ts_rank(document, tsquery).desc())
            .limit(CANDIDATES * 2)
        ).all()
    return [c for c in claims if c.article_id != exclude_article][:CANDIDATES]


@dataclass
class Match:
    claim: Claim
    score: float


def find_matches(session: Session, claim: Claim, threshold: float) -> list[Match]:
    """Earlier claims from other articles that say what `claim` says, best first."""
    found = [
        Match(other, similarity(claim.text, other.text))
        for other in candidates(session, claim.text, exclude_article=claim.article_id)
        if other.id != claim.id and (claim.id is None or other.id < claim.id)
    ]
    return sorted((m for m in found if m.score >= threshold), key=lambda m: -m.score)


def match_new_claims(session: Session, claims: list[Claim], suggest: float, link: float) -> int:
    """Record suggestions (and links) for newly stored claims; returns how many."""
    recorded = 0
    for claim in claims:
        for match in find_matches(session, claim, suggest):
            state = "linked" if match.score >= link else "suggested"
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
    from tracker.review import _actor

    actor = _actor(actor, engine)
    with session_scope(engine) as session:
        match = session.get(ClaimMatch, match_id)
        if match is None:
            raise LookupError(f"no match with id {match_id}")
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
    engine: Engine, claim_id: int, status: str, *, actor: str, note: str | None = None
) -> int:
    """One verdict for the whole cluster, recorded in each claim's history."""
    from tracker.review import set_status

    changed = 0
    for member in cluster_of(engine, claim_id):
        if member.status != status:
            set_status(
                engine, member.id, status, actor=actor, expected_version=member.version,
                note=note or f"verdict for the cluster of claim {claim_id}",
            )  # fmt: skip
            changed += 1
    return changed
