"""schema.org ClaimReview: publishing our reviewed claims, and importing others' fact-checks.

Export writes nothing unless every reviewed claim makes a complete ClaimReview: a missing
required field is an error naming the claim and what to set. Import keeps the claim
reviewed, rating, reviewer organisation, URL and date; new claims are then compared with
those fact-checks ("already checked by ..." on the claim page).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import AnyHttpUrl, BaseModel, TypeAdapter, ValidationError, field_validator
from rapidfuzz import fuzz
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, select

from tracker.config import Settings
from tracker.db import session_scope, storage_problem
from tracker.export import ExportFilter, narrowed
from tracker.models import Article, Claim, FactCheck, ReviewEvent
from tracker.readers import ReadError, decode
from tracker.sanitize import storable

REVIEWED = ("checked", "disputed", "inconclusive")
# A rating text for each verdict, unless the reviewer wrote their own; and a 1-5 value.
STATUS_RATING = {
    "checked": ("Accurate", 5),
    "disputed": ("Disputed", 1),
    "inconclusive": ("Unproven", 3),
}


class ClaimReviewError(ValueError):
    """Some reviewed claims cannot be published; `problems` names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("cannot write ClaimReview:\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems


def _date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


_WEB_URL = TypeAdapter(AnyHttpUrl)
_UNSAFE_IN_URL = re.compile(r"[\s\x00-\x1f\x7f<>\"'`\\{}|^]")


def web_url(value: Any) -> str | None:
    """`value` if it is an http(s) address with a host and nothing a page, a spreadsheet or
    a script could misread (spaces, quotes, angle brackets, control characters); else None."""
    if not isinstance(value, str) or not value or _UNSAFE_IN_URL.search(value):
        return None
    try:
        _WEB_URL.validate_python(value)
    except ValidationError:
        return None
    return value


def _template_problem(template: str | None) -> str | None:
    """What is wrong with TRACKER_REVIEW_URL_TEMPLATE, if anything: it must be a web
    address whose only field is {id}."""
    example = "e.g. https://factcheck.example.org/claims/{id}"
    if not template or "{id}" not in template:
        return f"no fact-check URL: set TRACKER_REVIEW_URL_TEMPLATE, {example}"
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:  # a lone "{" or "}"
        return f"TRACKER_REVIEW_URL_TEMPLATE cannot be filled in ({exc}); {example}"
    unknown = sorted(fields - {"id"})
    if unknown:
        named = ", ".join("{" + name + "}" for name in unknown)
        return f"TRACKER_REVIEW_URL_TEMPLATE has unknown field(s) {named}: only {{id}} is filled in"
    if web_url(template.replace("{id}", "1")) is None:
        return f"TRACKER_REVIEW_URL_TEMPLATE is not a web address (http or https); {example}"
    return None


def claim_reviews(
    engine: Engine, settings: Settings, where: ExportFilter | None = None
) -> list[dict[str, Any]]:
    """A ClaimReview for every reviewed claim `where` selects (default: all), or
    ClaimReviewError listing every problem."""
    problems = []
    if not settings.publisher_name:
        problems.append("no publisher: set TRACKER_PUBLISHER_NAME (the organisation)")
    if template_problem := _template_problem(settings.review_url_template):
        problems.append(template_problem)
    if settings.publisher_url and web_url(settings.publisher_url) is None:
        problems.append("TRACKER_PUBLISHER_URL is not a web address (http or https)")
    if problems:
        raise ClaimReviewError(problems)
    reviews = []
    with Session(engine) as session:
        query = (
            select(Claim, Article)
            .join(Article, Article.id == Claim.article_id)
            .where(Claim.status.in_(REVIEWED))
            .order_by(Claim.id)
        )
        rows = session.exec(narrowed(query, where or ExportFilter(), engine.dialect.name)).all()
        verdict_times = dict(
            session.exec(
                select(ReviewEvent.claim_id, sa.func.max(ReviewEvent.at))
                .where(ReviewEvent.action == "status")
                .group_by(ReviewEvent.claim_id)
            ).all()
        )
    author = {"@type": "Organization", "name": settings.publisher_name}
    if settings.publisher_url:
        author["url"] = settings.publisher_url
    for claim, article in rows:
        text = (claim.text or "").strip()
        if not text:
            problems.append(f"claim {claim.id}: no claim text")
            continue
        default_text, value = STATUS_RATING[claim.status]
        item: dict[str, Any] = {"@type": "Claim"}
        if claim.claimant:
            item["author"] = {"@type": _author_type(claim.claimant), "name": claim.claimant}
        elif article.outlet:
            item["author"] = {"@type": "Organization", "name": article.outlet}
        if article.published_at:
            item["datePublished"] = _date(article.published_at)
        if appearance := web_url(article.url):  # an imported file's "url" can be anything
            item["appearance"] = {"@type": "CreativeWork", "url": appearance}
        reviews.append(
            {
                "@context": "https://schema.org",
                "@type": "ClaimReview",
                "claimReviewed": text,
                "reviewRating": {
                    "@type": "Rating",
                    "alternateName": claim.rating or default_text,
                    "ratingValue": value,
                    "bestRating": 5,
                    "worstRating": 1,
                },
                "url": settings.review_url_template.format(id=claim.id),
                "author": author,
                "datePublished": _date(verdict_times.get(claim.id) or claim.updated_at),
                "itemReviewed": item,
            }
        )
    if problems:
        raise ClaimReviewError(problems)
    return reviews


_ORGANISATION = re.compile(
    r"\b(?:police|department|ministry|office|agency|bureau|committee|council|commission|"
    r"government|university|institute|association|party|company|corporation|inc|ltd|bank|"
    r"court|service|board|authority|authorities|officials|figures|data|report|survey|study|"
    r"poll|census|reuters|associated press|white house|kremlin|pentagon|congress|parliament)\b",
    re.IGNORECASE,
)


def _author_type(claimant: str) -> str:
    """schema.org type of a claimant: "Labor Department", "state police" are not people."""
    return "Organization" if _ORGANISATION.search(claimant) else "Person"


# Characters that end or open markup where the JSON-LD is embedded, in a
# <script type="application/ld+json"> element: "</script><script>..." in a claim would
# break out of it. Escaped, the JSON means the same.
_SCRIPT_SAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                "\u2029": "\\u2029"}  # fmt: skip


def to_script_safe_json(data: Any) -> str:
    """JSON safe to paste inside a <script> element of an HTML page."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_SAFE[m[0]], text)


def write_claimreview(
    engine: Engine, settings: Settings, out, where: ExportFilter | None = None
) -> int:
    reviews = claim_reviews(engine, settings, where)  # all checked before a byte is written
    out.write(to_script_safe_json(reviews))
    out.write("\n")
    return len(reviews)


# --- Import ------------------------------------------------------------------------------


class FactCheckCreate(BaseModel):
    claim_reviewed: str
    rating: str | None = None
    organisation: str | None = None
    url: str | None = None
    date_published: datetime | None = None
    claimant: str | None = None
    appearance_url: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """No NUL (PostgreSQL refuses it) and no half of a UTF-16 pair ("\\ud800", which
        cannot be encoded, hashed or stored): a fact-check file is anyone's JSON."""
        return storable(value) if isinstance(value, str) else value

    @field_validator("claim_reviewed")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = re.sub(r"\s+", " ", value).strip()
        if not value:
            raise ValueError("claimReviewed is empty")
        return value

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.url or ''}\n{self.claim_reviewed}".encode()).hexdigest()


def _scalar(value: Any) -> str | None:
    """A text or number as text; anything else (a list, an object) is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None


def _name(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name")
    return _scalar(value)


def _url(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url")
    return _scalar(value)


def _rating(value: Any) -> str | None:
    """The rating's text: its alternateName, else its ratingValue. A rating written as
    plain text ("reviewRating": "False") is that text."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, dict):
        raise ValueError("reviewRating: must be a Rating object or a text")
    for key in ("alternateName", "ratingValue"):
        found = value.get(key)
        if found is not None:
            text = _scalar(found)
            if text is None:
                raise ValueError(f"reviewRating.{key}: must be a text or a number")
            return text
    return None


def from_claimreview(data: dict[str, Any]) -> FactCheckCreate:
    """Raises ValueError (ValidationError included) naming the field that is wrong."""
    item = data.get("itemReviewed") or {}
    return FactCheckCreate(
        claim_reviewed=data.get("claimReviewed") or "",
        rating=_rating(data.get("reviewRating")),
        organisation=_name(data.get("author")),
        url=data.get("url"),
        date_published=data.get("datePublished") or None,
        claimant=_name(item.get("author")) if isinstance(item, dict) else None,
        appearance_url=_url(item.get("appearance") or item.get("firstAppearance"))
        if isinstance(item, dict)
        else None,
    )


_MAX_DEPTH = 20


def _objects(data: Any, where: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every object of a JSON-LD document with where it is: `file[2]`, `file@graph[0]`;
    lists in lists deeper than any real document are one entry, reported as such."""
    if depth > _MAX_DEPTH:
        yield where, _TOO_DEEP
    elif isinstance(data, list):
        for i, entry in enumerate(data):
            yield from _objects(entry, f"{where}[{i}]", depth + 1)
    elif isinstance(data, dict) and "@graph" in data:
        yield from _objects(data["@graph"], f"{where}@graph", depth + 1)
    else:
        yield where, data


_TOO_DEEP = object()


def _is_claimreview(entry: Any) -> bool:
    """A ClaimReview, whose @type may also be written as a list ("@type": ["ClaimReview"])."""
    if not isinstance(entry, dict):
        return False
    kind = entry.get("@type")
    return (
        kind is None or kind == "ClaimReview" or (isinstance(kind, list) and "ClaimReview" in kind)
    )


def read_factchecks(path: Path) -> Iterator[FactCheckCreate | ReadError]:
    """ClaimReviews from JSON-LD (one object, a list, or an @graph) or JSON Lines. Each
    bad entry (or file) is its own ReadError; the valid entries beside it are kept."""
    try:
        yield from _read_factchecks(path)
    except Exception as exc:  # whatever else: this file's error, not the whole import's
        reason = "nested too deeply" if isinstance(exc, RecursionError) else type(exc).__name__
        yield ReadError(str(path), f"could not be read: {reason}")


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None


def _read_factchecks(path: Path) -> Iterator[FactCheckCreate | ReadError]:
    try:
        text = decode(path.read_bytes())
    except IsADirectoryError:
        yield from (item for file in _json_files(path) for item in read_factchecks(file))
        return
    except (OSError, ValueError) as exc:
        yield ReadError(str(path), getattr(exc, "strerror", None) or str(exc))
        return
    if not text.strip():
        yield ReadError(str(path), "empty file")
        return
    try:
        documents = [(str(path), _loads(text))]
    except json.JSONDecodeError:
        documents = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    documents.append((f"{path}:{number}", _loads(line)))
                except json.JSONDecodeError as exc:
                    yield ReadError(f"{path}:{number}", f"invalid JSON: {exc.msg}")
                except ValueError as exc:
                    yield ReadError(f"{path}:{number}", str(exc))
    except ValueError as exc:
        yield ReadError(str(path), str(exc))
        return
    for source, document in documents:
        for where, entry in _objects(document, source):
            if entry is _TOO_DEEP:
                yield ReadError(where, "nested too deeply")
                continue
            if not _is_claimreview(entry):
                yield ReadError(where, "not a ClaimReview object")
                continue
            try:
                yield from_claimreview(entry)
            except ValidationError as exc:
                error = exc.errors()[0]
                field = ".".join(str(part) for part in error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                yield ReadError(where, f"{field}: {message}" if field else message)
            except ValueError as exc:
                yield ReadError(where, str(exc))


def _json_files(folder: Path) -> list[Path]:
    """The fact-check files in a folder (and below), in name order."""
    suffixes = {".json", ".jsonld", ".jsonl"}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _same(stored: Any, new: Any) -> bool:
    """Equal values; times compared as instants (PostgreSQL gives them back in UTC)."""
    if isinstance(stored, datetime) and isinstance(new, datetime):
        return _utc(stored) == _utc(new)
    return stored == new


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class ImportCounts:
    added: int = 0
    known: int = 0
    invalid: int = 0
    updated: int = 0  # known, but the publisher has since changed the rating or details
    problems: list[str] = field(default_factory=list)  # what the database refused, one line each


def import_factchecks(engine: Engine, items: Iterable[FactCheckCreate | ReadError]) -> ImportCounts:
    counts = ImportCounts()
    for item in items:
        if isinstance(item, ReadError):
            counts.invalid += 1
            continue
        try:
            with session_scope(engine) as session:
                stored = session.exec(select(FactCheck).where(FactCheck.key == item.key)).first()
                if stored is None:
                    session.add(FactCheck(key=item.key, **item.model_dump()))
                    counts.added += 1
                    continue
                values = item.model_dump()
                if all(_same(getattr(stored, k), v) for k, v in values.items()):
                    counts.known += 1
                    continue
                for name, value in values.items():  # a corrected rating replaces the old
                    setattr(stored, name, value)
                session.add(stored)
                counts.updated += 1
        except IntegrityError:
            counts.known += 1
        except SQLAlchemyError as exc:  # one line, never the INSERT and its values
            counts.invalid += 1
            counts.problems.append(storage_problem(exc)[0])
    return counts


# --- Matching new claims against fact-checks ---------------------------------------------


def prior_checks(
    engine: Engine, text: str, *, limit: int = 3, threshold: float = 70.0
) -> list[tuple[FactCheck, float]]:
    """Published fact-checks that say what `text` says: candidates from the full-text
    index, ranked by rapidfuzz's token-set similarity (0-100)."""
    words = re.findall(r"\w{3,}", text)
    if not words:
        return []
    with Session(engine) as session:
        if engine.dialect.name == "sqlite":
            query = " OR ".join(f'"{w}"' for w in words)
            ids = [
                row[0]
                for row in session.exec(
                    sa.text(
                        "SELECT rowid FROM fact_check_fts WHERE fact_check_fts MATCH :q "
                        "ORDER BY rank LIMIT 50"
                    ).bindparams(q=query)
                )
            ]
            candidates = session.exec(select(FactCheck).where(FactCheck.id.in_(ids))).all()
        else:
            document = sa.func.to_tsvector(
                sa.literal_column("'english'::regconfig"), FactCheck.claim_reviewed
            )
            tsquery = sa.func.to_tsquery(
                sa.literal_column("'english'::regconfig"), " | ".join(words)
            )
            candidates = session.exec(
                select(FactCheck)
                .where(document.op("@@")(tsquery))
                .order_by(sa.func.ts_rank(document, tsquery).desc())
                .limit(50)
            ).all()
    scored = [(c, fuzz.token_set_ratio(text.lower(), c.claim_reviewed.lower())) for c in candidates]
    scored = [(c, s) for c, s in scored if s >= threshold]
    return sorted(scored, key=lambda pair: -pair[1])[:limit]
