"""`tracker eval`: how well an extractor finds the claims people would check, measured on
public benchmarks (kept outside the repository; see ../shared/datasets/README.md).

Every set is run through the extractor as documents (debates and speeches rebuilt from
their sentences, one sentence a line), the same way articles are, so the offline model
and any language model are compared on equal terms. A gold sentence counts as found when
an extracted claim's quote overlaps it; for the check-worthiness sets the claim must also
score at or above the check-worthy threshold.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.schemas import ExtractedClaim

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Extract = Callable[[str], list[ExtractedClaim]]
DOCUMENT_SENTENCES = 40  # sentences per document for sets without document boundaries


@dataclass
class Benchmark:
    name: str
    documents: list[list[tuple[str, bool]]]  # sentences with their gold label
    checkworthiness: bool  # True: positives are check-worthy claims; False: any claim


@dataclass
class Result:
    name: str
    sentences: int
    positives: int
    precision: float
    recall: float
    f1: float
    all_yes_f1: float


def _read(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def _grouped(rows: Iterable[tuple[str, str, bool]]) -> list[list[tuple[str, bool]]]:
    documents: dict[str, list[tuple[str, bool]]] = {}
    for key, text, label in rows:
        documents.setdefault(key, []).append((text, label))
    return list(documents.values())


def load_benchmarks(data: Path) -> list[Benchmark]:
    """The benchmarks present under `data` (absent ones are left out)."""
    found = []
    claimbuster = data / "claimbuster" / "groundtruth.csv"
    if claimbuster.exists():
        rows = sorted(_read(claimbuster), key=lambda r: (r["File_id"], int(r["Line_number"])))
        docs = _grouped((r["File_id"], r["Text"], r["Verdict"] == "1") for r in rows)
        found.append(Benchmark("ClaimBuster groundtruth", docs, True))
    checkthat = data / "checkthat2023-test" / "checkworthy_english_test.tsv"
    if checkthat.exists():
        rows = _read(checkthat, "\t")
        docs = _grouped(
            (str(i // DOCUMENT_SENTENCES), r["Text"], r["class_label"] == "Yes")
            for i, r in enumerate(rows)
        )
        found.append(Benchmark("CheckThat! 2023 1B test", docs, True))
    policlaim = data / "policlaim-test" / "policlaim_test_gold.csv"
    if policlaim.exists():
        rows = _read(policlaim)
        docs = _grouped((r["SPEECH"], r["SENTENCES"], r["Golden"] == "1") for r in rows)
        found.append(Benchmark("PoliClaim test", docs, False))
    return found


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def run_benchmark(benchmark: Benchmark, extract: Extract, checkworthy_at: float) -> Result:
    true_pos = predicted = positives = sentences = 0
    for document in benchmark.documents:
        spans, parts, offset = [], [], 0
        for text, _ in document:
            spans.append((offset, offset + len(text)))
            parts.append(text)
            offset += len(text) + 1
        claims = [
            c
            for c in extract("\n".join(parts))
            if not benchmark.checkworthiness or c.checkworthiness >= checkworthy_at
        ]
        for (start, end), (_, gold) in zip(spans, document, strict=True):
            found = any(c.quote_start < end and start < c.quote_end for c in claims)
            sentences += 1
            positives += gold
            predicted += found
            true_pos += found and gold
    precision = true_pos / predicted if predicted else 0.0
    recall = true_pos / positives if positives else 0.0
    base = positives / sentences if sentences else 0.0
    return Result(
        benchmark.name,
        sentences,
        positives,
        round(precision, 3),
        round(recall, 3),
        round(_f1(precision, recall), 3),
        round(_f1(base, 1.0), 3),
    )


def as_dict(result: Result) -> dict:
    return asdict(result)


# --- Claim matching ---------------------------------------------------------------------


class DatabaseNotEmpty(Exception):
    """The matching evaluation was pointed at a database that holds articles."""


def matching_map_at_5(
    data: Path, split: str = "dev", workdir: Path | None = None, url: str | None = None
) -> dict | None:
    """MAP@5 of claim matching on CLEF CheckThat! 2020 task 2 (tweets against verified
    claims), through the same index and scoring as the tracker's own matching: in a
    temporary SQLite file, or in the empty database at `url` (emptied again after)."""
    import tempfile

    import sqlalchemy as sa

    from tracker.db import create_db_engine, migrate

    folder = data / "clef2020-claim-retrieval"
    if not (folder / split / "tweets.queries.tsv").exists():
        return None
    verified = _read(folder / "verified_claims.docs.tsv", "\t")
    queries = _read(folder / split / "tweets.queries.tsv", "\t")
    relevant: dict[str, set[str]] = {}
    for line in (folder / split / "tweet-vclaim-pairs.qrels").read_text().splitlines():
        tweet, _, vclaim, label = line.split()
        if label == "1":
            relevant.setdefault(tweet, set()).add(vclaim)
    if url is None:
        workdir = workdir or Path(tempfile.mkdtemp(prefix="tracker-eval-"))
        url = f"sqlite:///{workdir / 'matching.db'}"
    engine = create_db_engine(url)
    migrate(engine)
    with engine.begin() as conn:  # refuse a database in use; the eval's rows are its own
        if conn.execute(sa.text("SELECT count(*) FROM article")).scalar_one():
            engine.dispose()
            raise DatabaseNotEmpty("the matching evaluation needs an empty database")
        article_id = conn.execute(
            sa.text(
                "INSERT INTO article (text, content_hash, imported_at, extraction_state, "
                "claims_dropped) VALUES ('CLEF 2020 verified claims (tracker eval)', "
                "'tracker-eval-clef2020', '2020-01-01', 'extracted', 0) RETURNING id"
            )
        ).scalar_one()
    try:
        scored, total = _rank_queries(engine, article_id, verified, queries, relevant)
    finally:
        with engine.begin() as conn:  # its claims go with it (ON DELETE CASCADE)
            conn.execute(sa.text("DELETE FROM article WHERE id = :id").bindparams(id=article_id))
        engine.dispose()
    return {"name": f"CLEF 2020 claim retrieval ({split})", "queries": scored,
            "map_at_5": round(total / scored, 3) if scored else 0.0}  # fmt: skip


def _rank_queries(
    engine: Engine,
    article_id: int,
    verified: list[dict[str, str]],
    queries: list[dict[str, str]],
    relevant: dict[str, set[str]],
) -> tuple[int, float]:
    """Store the verified claims under the eval's article, rank them for every query:
    (queries scored, sum of AP@5)."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from tracker.matching import rank

    first_column = next(iter(verified[0]))
    vclaim_of: dict[int, str] = {}
    with engine.begin() as conn:
        insert = sa.text(
            "INSERT INTO claim (article_id, text, quote, quote_start, quote_end, claim_type, "
            "checkworthiness, status, created_at, updated_at, version) VALUES "
            "(:article, :text, :text, 0, 1, 'other', 0.5, 'checked', '2020-01-01', "
            "'2020-01-01', 1) RETURNING id"
        )
        for row in verified:
            text = f"{row['vclaim']} {row['title']}"
            claim_id = conn.execute(insert, {"article": article_id, "text": text}).scalar_one()
            vclaim_of[claim_id] = row[first_column]
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE claim"))  # flushes the GIN pending list too
    total, scored = 0.0, 0
    with Session(engine) as session:
        for query in queries:
            tweet_id = query[next(iter(query))]
            gold = relevant.get(tweet_id)
            if not gold:
                continue
            found = rank(session, query["tweet_content"], limit=5)
            ranked = [vclaim_of.get(claim.id) for claim, _ in found]  # None: not the eval's
            hits, precision_sum = 0, 0.0
            for position, vclaim in enumerate(ranked, 1):
                if vclaim in gold:
                    hits += 1
                    precision_sum += hits / position
            total += precision_sum / min(len(gold), 5)
            scored += 1
    return scored, total
