"""Turning paths into articles: each input gives an `ArticleCreate` or a `ReadError`,
so one bad file never stops the rest of a batch."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tracker.models import ArticleCreate

SUPPORTED = (".txt",)


@dataclass
class ReadError:
    source: str
    reason: str


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def _article(source: str, raw: bytes, title: str | None) -> ArticleCreate | ReadError:
    if b"\x00" in raw[:8192]:
        return ReadError(source, "binary file, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ReadError(source, f"not UTF-8 text (byte {exc.start})")
    try:
        return ArticleCreate(text=text, title=title, source_path=source)
    except ValidationError as exc:
        return ReadError(source, exc.errors()[0]["msg"].removeprefix("Value error, "))


def expand(paths: list[str]) -> Iterator[Path | str | ReadError]:
    """Files named, files under folders named (sorted), or "-" for standard input."""
    for name in paths:
        if name == "-":
            yield "-"
            continue
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED)
            if not found:
                yield ReadError(name, f"no {', '.join(SUPPORTED)} files in this folder")
            yield from (p for p in found if p.is_file())
        elif path.is_file():
            yield path
        else:
            yield ReadError(name, "no such file or folder")


def read_articles(
    paths: list[str], title: str | None = None
) -> Iterator[ArticleCreate | ReadError]:
    for item in expand(paths):
        if isinstance(item, ReadError):
            yield item
        elif item == "-":
            yield _article("<stdin>", sys.stdin.buffer.read(), title)
        else:
            try:
                raw = item.read_bytes()
            except OSError as exc:
                yield ReadError(str(item), exc.strerror or str(exc))
                continue
            yield _article(str(item), raw, title or _title_from_name(item))
