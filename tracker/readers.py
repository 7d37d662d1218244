"""Turning paths into articles: each input gives an `ArticleCreate` or a `ReadError`,
so one bad file (or one bad line of a JSONL file) never stops the rest of a batch.

Formats: `.txt`; `.md` with YAML front matter (title, url, outlet, author, date);
`.html` (main text and metadata by trafilatura); `.json` (an object or a list of objects)
and `.jsonl` (one object per line), each object with `text` and optional `title`, `url`,
`outlet`, `author`, `published_at`.
"""

from __future__ import annotations

import codecs
import glob
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import charset_normalizer
from pydantic import ValidationError

from tracker.models import ArticleCreate

FORMATS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
METADATA_ALIASES = {
    "title": ("title", "headline"),
    "url": ("url", "link", "canonical_url"),
    "outlet": ("outlet", "publisher", "source", "site_name", "sitename"),
    "author": ("author", "authors", "byline"),
    "published_at": ("published_at", "published", "date", "pubdate", "datePublished"),
}


@dataclass
class ReadError:
    source: str
    reason: str


Item = ArticleCreate | ReadError


@dataclass
class Input:
    """A file (or standard input) to read, and the format to read it as."""

    source: str
    path: Path | None
    fmt: str


def _title_from_name(path: Path) -> str:
    name = path.stem.replace("-", " ").replace("_", " ").strip()
    return name[:1].upper() + name[1:]


def expand(paths: Iterable[str], stdin_format: str = "txt") -> Iterator[Input | ReadError]:
    """Files named, files under folders named (recursively, sorted), glob patterns,
    or "-" for standard input."""
    for name in paths:
        if name == "-":
            yield Input("<stdin>", None, stdin_format)
            continue
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in FORMATS)
            if not found:
                yield ReadError(name, f"no {', '.join(sorted(set(FORMATS)))} files in this folder")
            yield from (Input(str(p), p, FORMATS[p.suffix.lower()]) for p in found if p.is_file())
        elif path.is_file():
            fmt = FORMATS.get(path.suffix.lower())
            yield (
                Input(name, path, fmt)
                if fmt
                else ReadError(name, f"unsupported file type {path.suffix or '(none)'!r}")
            )
        elif glob.has_magic(name):
            matches = sorted(glob.glob(name, recursive=True))
            if not matches:
                yield ReadError(name, "no file matches this pattern")
            yield from expand([m for m in matches if not Path(m).is_dir()], stdin_format)
        else:
            yield ReadError(name, "no such file or folder")


def decode(raw: bytes) -> str:
    """Text from bytes: UTF-8 (with or without BOM), UTF-16/32 (BOM, or the NUL pattern of
    UTF-16 without one), else the detected encoding.

    Raises ValueError for binary data or text whose encoding cannot be told.
    """
    if (wide := _utf16_or_32(raw)) is not None:
        return wide
    if b"\x00" in raw[:8192]:
        raise ValueError("binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(raw).best()
    if best is None:
        raise ValueError("not text in any encoding we recognise")
    if best.encoding in _RARE_CODE_PAGES and (western := _as_western(raw)) is not None:
        return western  # a few lines of French can look like Baltic DOS (cp775) to it
    return str(best)


# DOS and classic Mac code pages: rare in news files, and the detector's wrong guess for a
# few lines of Latin-1 / Windows-1252 text.
_RARE_CODE_PAGES = frozenset(
    ["cp437", "cp737", "cp775", "cp850", "cp852", "cp855", "cp857", "cp858", "cp860", "cp861",
     "cp862", "cp863", "cp865", "cp869", "mac_roman", "mac_latin2", "mac_iceland",
     "mac_turkish"]
)  # fmt: skip


def _as_western(raw: bytes) -> str | None:
    """`raw` as Windows-1252 when every character beyond ASCII is then a letter or common
    typographic punctuation (Cyrillic or Greek bytes read that way give symbols)."""
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        return None
    fine = all(ch.isalpha() or ch in "’‘“”–—…«»°€£ " for ch in text if ord(ch) > 127)
    return text if fine else None


def _utf16_or_32(raw: bytes) -> str | None:
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if raw.startswith(bom):
            return _wide(raw, codec)
    head = raw[:8192]
    if len(head) >= 4 and len(head) % 2 == 0:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if odd > len(head) * 0.4 and even == 0:
            return _wide(raw, "utf-16-le")
        if even > len(head) * 0.4 and odd == 0:
            return _wide(raw, "utf-16-be")
    return None


def _wide(raw: bytes, codec: str) -> str:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        raise ValueError(f"not valid {codec.upper()} text") from None
    if "\x00" in text:
        raise ValueError("binary file, not text")
    return text


def _article(source: str, text: str, meta: dict[str, Any]) -> ArticleCreate | ReadError:
    values = {"text": text, "source_path": source}
    for field, aliases in METADATA_ALIASES.items():
        for alias in aliases:
            value = meta.get(alias)
            if value not in (None, "", []):
                if isinstance(value, list):  # authors: ["A", "B"]
                    value = ", ".join(str(v) for v in value)
                values[field] = value if field == "published_at" else str(value)
                break
    try:
        return ArticleCreate(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return ReadError(source, f"{field}: {first['msg'].removeprefix('Value error, ')}")


def _json_document(source: str, text: str) -> Iterator[Item]:
    """Articles from a JSON document: one object, or a list of objects."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield ReadError(source, f"invalid JSON at line {exc.lineno}: {exc.msg}")
        return
    if not isinstance(data, list):
        yield _record(source, data)
        return
    for i, record in enumerate(data):
        yield _record(f"{source}[{i}]", record)


def _record(source: str, record: Any) -> ArticleCreate | ReadError:
    if not isinstance(record, dict):
        return ReadError(source, 'expected a JSON object with a "text" field')
    text = record.get("text")
    if not isinstance(text, str):
        return ReadError(source, 'missing "text" (the article\'s text, a string)')
    return _article(source, text, record)


def _markdown(source: str, text: str, path: Path | None) -> ArticleCreate | ReadError:
    import frontmatter

    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # the YAML parser raises many kinds
        return ReadError(source, f"unreadable front matter: {str(exc).splitlines()[0]}")
    meta = dict(post.metadata)
    if path and not any(meta.get(a) for a in METADATA_ALIASES["title"]):
        meta["title"] = _title_from_name(path)
    return _article(source, post.content, meta)


def _html(source: str, text: str) -> ArticleCreate | ReadError:
    import trafilatura

    doc = trafilatura.bare_extraction(text, with_metadata=True, include_comments=False)
    if doc is None or not (doc.text or "").strip():
        return ReadError(source, "no article text found in the HTML")
    body = "\n\n".join(line.strip() for line in doc.text.splitlines() if line.strip())
    meta = {
        "title": doc.title,
        "url": doc.url,
        "outlet": doc.sitename,
        "author": doc.author,
        "published_at": doc.date,
    }
    return _article(source, body, meta)


def parse(source: str, raw: bytes, fmt: str, path: Path | None) -> Iterator[Item]:
    """The articles in one input's bytes."""
    try:
        text = decode(raw)
    except ValueError as exc:
        yield ReadError(source, str(exc))
        return
    if fmt == "json":
        yield from _json_document(source, text)
    elif fmt == "md":
        yield _markdown(source, text, path)
    elif fmt == "html":
        yield _html(source, text)
    else:
        meta = {"title": _title_from_name(path)} if path else {}
        yield _article(source, text, meta)


def _too_big(source: str, max_bytes: int) -> ReadError:
    limit = f"{max_bytes / 1_000_000:g} MB"
    return ReadError(source, f"larger than the {limit} limit (TRACKER_MAX_ARTICLE_BYTES)")


def _jsonl_lines(item: Input, stream: IO[bytes], max_bytes: int) -> Iterator[Item]:
    """JSON Lines read line by line, so an archive of any size streams in flat memory."""
    for number, raw in enumerate(stream, 1):
        source = f"{item.source}:{number}"
        if not raw.strip():
            continue
        if len(raw) > max_bytes:
            yield _too_big(source, max_bytes)
            continue
        try:
            record = json.loads(decode(raw))
        except ValueError as exc:  # JSONDecodeError, or undecodable bytes
            yield ReadError(source, f"invalid JSON: {getattr(exc, 'msg', exc)}")
            continue
        yield _record(source, record)


def read_articles(
    paths: Iterable[str],
    *,
    max_bytes: int = 10_000_000,
    stdin: IO[bytes] | None = None,
    stdin_format: str = "txt",
) -> Iterator[Item]:
    """Every article in `paths`, in order, with a ReadError for each bad input.

    `max_bytes` limits one file, or one line of a JSON Lines file.
    """
    for item in expand(paths, stdin_format):
        if isinstance(item, ReadError):
            yield item
            continue
        try:
            if item.fmt == "jsonl":
                if item.path is None:
                    yield from _jsonl_lines(item, stdin or sys.stdin.buffer, max_bytes)
                else:
                    with item.path.open("rb") as stream:
                        yield from _jsonl_lines(item, stream, max_bytes)
                continue
            if item.path is not None and item.path.stat().st_size > max_bytes:
                yield _too_big(item.source, max_bytes)
                continue
            if item.path is None:
                raw = (stdin or sys.stdin.buffer).read(max_bytes + 1)
            else:
                raw = item.path.read_bytes()
        except OSError as exc:
            yield ReadError(item.source, exc.strerror or str(exc))
            continue
        if len(raw) > max_bytes:
            yield _too_big(item.source, max_bytes)
        elif not raw.strip():
            yield ReadError(item.source, "empty file")
        else:
            yield from parse(item.source, raw, item.fmt, item.path)


def count_inputs(paths: Iterable[str]) -> int | None:
    """How many articles `paths` hold, cheaply (for a progress bar); None if unknown."""
    total = 0
    for item in expand(paths):
        if isinstance(item, ReadError):
            total += 1
        elif item.path is None:
            return None
        elif item.fmt == "jsonl":
            try:
                with item.path.open("rb") as stream:
                    total += sum(1 for line in stream if line.strip())
            except OSError:
                total += 1
        else:
            total += 1  # a JSON list counts once until it is read
    return total
