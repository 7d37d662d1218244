"""Turning paths into articles: each input gives an `ArticleCreate` or a `ReadError`,
so one bad file (or one bad line of a JSONL file) never stops the rest of a batch.

Formats: `.txt`; `.md` with YAML front matter (title, url, outlet, author, date);
`.html` (main text and metadata by trafilatura); `.json` (an object or a list of objects)
and `.jsonl` (one object per line), each object with `text` and optional `title`, `url`,
`outlet`, `author`, `published_at`.
"""

from __future__ import annotations

import codecs
import datetime
import errno
import fnmatch
import glob
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import charset_normalizer
import yaml
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
    or "-" for standard input. A folder or file found that cannot be read is a ReadError,
    never skipped in silence; so is a name that cannot even be looked up (too long, in a
    folder we may not enter)."""
    for name in paths:
        if name == "-":
            yield Input("<stdin>", None, stdin_format)
            continue
        path = Path(name)
        try:
            info = path.stat()
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and glob.has_magic(name):
                yield from _expand_pattern(name, stdin_format)
            elif isinstance(exc, FileNotFoundError | NotADirectoryError):
                yield ReadError(name, "no such file or folder")
            else:
                yield ReadError(name, _reason(exc) if isinstance(exc, OSError) else str(exc))
            continue
        if stat.S_ISDIR(info.st_mode):
            found, errors = _walk(path)
            yield from errors
            if not found and not errors:
                yield ReadError(name, f"no {', '.join(sorted(set(FORMATS)))} files in this folder")
            yield from (Input(str(p), p, FORMATS[p.suffix.lower()]) for p in found)
            continue
        fmt = FORMATS.get(path.suffix.lower())
        # (a named pipe or a device is refused when read, without being opened)
        yield (
            Input(name, path, fmt)
            if fmt
            else ReadError(name, f"unsupported file type {path.suffix or '(none)'!r}")
        )


def _expand_pattern(pattern: str, stdin_format: str) -> Iterator[Input | ReadError]:
    """A glob pattern's files, and every folder it would look into but cannot (glob itself
    skips those in silence)."""
    errors = _glob_errors(pattern)
    matches = sorted(glob.glob(pattern, recursive=True))
    yield from errors
    if not matches and not errors:
        yield ReadError(pattern, "no file matches this pattern")
    yield from expand([m for m in matches if not _is_folder(m)], stdin_format)


def _is_folder(name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name).st_mode)
    except (OSError, ValueError):
        return False


def is_regular_file(name: str) -> bool:
    """Whether `name` is a regular file (after links); False for anything that cannot be
    looked up, instead of the OSError Path.is_file() raises for a name too long."""
    try:
        return stat.S_ISREG(os.stat(name).st_mode)
    except (OSError, ValueError):
        return False


def _glob_errors(pattern: str) -> list[ReadError]:
    """The folders `pattern` would list (as glob does: hidden names only for a pattern
    that starts with a dot) that cannot be listed."""
    parts = Path(pattern).parts
    first = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    folders = [Path(*parts[:first]) if first else Path(".")]
    errors: dict[str, ReadError] = {}
    seen: set[tuple[int, int]] = set()

    def listing(folder: Path) -> list[os.DirEntry]:
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                return []  # a link loop, or two routes to one folder
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as entries:
                return list(entries)
        except (FileNotFoundError, NotADirectoryError):
            return []  # nothing there to match: not an error
        except OSError as exc:
            reason = f"cannot read this folder: {_reason(exc)}"
            errors.setdefault(str(folder), ReadError(str(folder), reason))
            return []

    def folders_in(folder: Path, part: str) -> list[Path]:
        found = []
        for entry in listing(folder):
            if entry.name.startswith(".") and not part.startswith("."):
                continue
            try:
                if entry.is_dir() and fnmatch.fnmatch(entry.name, part):
                    found.append(Path(entry.path))
            except OSError:
                continue
        return found

    for part in parts[first:]:
        following: list[Path] = []
        for folder in folders:
            if part == "**":
                stack = [folder]
                while stack:
                    current = stack.pop()
                    following.append(current)
                    stack.extend(folders_in(current, "*"))
            elif glob.has_magic(part):
                following.extend(folders_in(folder, part))
            else:
                following.append(folder / part)
        folders = following
        seen.clear()  # each step may list a folder an earlier step listed
    return sorted(errors.values(), key=lambda e: e.source)


def _walk(folder: Path) -> tuple[list[Path], list[ReadError]]:
    """The files of a supported type under `folder` (sorted), and a ReadError for every
    subfolder that cannot be listed and every link that leads nowhere. Linked folders are
    followed once (a link loop is not a hang). Anything that is not a folder is found
    (a named pipe or a device is then refused, unopened, when read)."""
    found: list[Path] = []
    errors: list[ReadError] = []
    seen: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            info = current.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(current) as entries:
                listed = list(entries)
        except OSError as exc:
            errors.append(ReadError(str(current), f"cannot read this folder: {_reason(exc)}"))
            continue
        for entry in listed:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    pending.append(path)
                elif path.suffix.lower() in FORMATS:
                    found.append(path)  # a broken link fails when read, with the reason
            except OSError as exc:
                errors.append(ReadError(str(path), _reason(exc)))
    return sorted(found), sorted(errors, key=lambda e: e.source)


def _reason(exc: OSError) -> str:
    if isinstance(exc, NotRegularFile):
        return exc.strerror
    if isinstance(exc, FileNotFoundError):
        return "no such file (deleted, or a link to nothing)"
    return exc.strerror or str(exc)


def decode(raw: bytes) -> str:
    """Text from bytes (see `decode_with_warnings`), dropping the warnings."""
    return decode_with_warnings(raw)[0]


def decode_with_warnings(raw: bytes) -> tuple[str, list[str]]:
    """Text from bytes: UTF-8 (with or without BOM), UTF-16/32 (BOM, or the NUL pattern of
    UTF-16 without one), else the detected encoding. UTF-8 with a few stray bytes is read
    with those bytes replaced (U+FFFD), and a warning says so.

    Raises ValueError for binary data or text whose encoding cannot be told.
    """
    if (wide := _utf16_or_32(raw)) is not None:
        return wide, []
    if b"\x00" in raw[:8192]:
        raise ValueError("binary file, not text")
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    replaced = raw.decode("utf-8-sig", "replace")
    bad = replaced.count("\ufffd") - raw.count("\ufffd".encode())
    valid_multibyte = sum(1 for ch in replaced if ord(ch) > 127) - bad
    warning = (
        f"not valid UTF-8: {bad} stray byte(s) replaced with \ufffd (the first at byte {first_bad})"
    )
    if valid_multibyte > 0 and bad <= valid_multibyte:
        return replaced, [warning]  # UTF-8 with a stray byte or two, not another encoding
    best = charset_normalizer.from_bytes(raw).best()
    if best is None:
        if bad * 1000 <= len(raw):
            return replaced, [warning]
        raise ValueError("not text in any encoding we recognise")
    if best.encoding in _RARE_CODE_PAGES and (western := _as_western(raw)) is not None:
        return western, []  # a few lines of French can look like Baltic DOS (cp775) to it
    return str(best), []


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
    if b"\x00" in head and len(raw) % 2 == 0:
        # UTF-16 without a BOM in a script beyond Latin (Cyrillic, Greek, Japanese): NULs
        # only at its ASCII spaces and digits. The detector, asked about UTF-16 alone,
        # finds no coherent text in binary data.
        best = charset_normalizer.from_bytes(raw, cp_isolation=["utf_16_le", "utf_16_be"]).best()
        if best is not None and "\x00" not in (text := str(best)):
            return text
    return None


def _wide(raw: bytes, codec: str) -> str:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        raise ValueError(f"not valid {codec.upper()} text") from None
    if "\x00" in text:
        raise ValueError("binary file, not text")
    return text


MAX_FIELD_CHARS = 2_000  # a title, URL, outlet, author or date; longer is not metadata
_SCALARS = (str, int, float, bool, datetime.date)


def _field_value(field: str, value: Any) -> Any:
    """A metadata value as the article stores it: a scalar of bounded size (authors may be
    a list of them). Raises ValueError naming what is wrong, without printing the value:
    a value can be anything a file holds (a nested list a YAML alias bomb expands to)."""
    if isinstance(value, list) and field == "author":
        if not all(isinstance(v, _SCALARS) for v in value):
            raise ValueError("must be a name or a list of names")
        value = ", ".join(str(v) for v in value)
    elif not isinstance(value, _SCALARS):
        raise ValueError(f"must be a single value, not a {type(value).__name__}")
    if field != "published_at" or not isinstance(value, datetime.date):
        value = str(value)
        if len(value) > MAX_FIELD_CHARS:
            raise ValueError(f"longer than {MAX_FIELD_CHARS:,} characters")
    return value


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any, warnings: list[str], what: str) -> Any:
    """A JSON string may hold half of a UTF-16 pair ("\\ud800"), which is no character and
    cannot be stored or hashed: it becomes U+FFFD, with a warning."""
    if isinstance(value, str) and _LONE_SURROGATE.search(value):
        count = len(_LONE_SURROGATE.findall(value))
        warnings.append(f"{what}: {count} lone surrogate(s) (\\ud800-\\udfff) replaced with \ufffd")
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def _article(
    source: str, text: str, meta: dict[str, Any], warnings: list[str] | None = None
) -> ArticleCreate | ReadError:
    warnings = list(warnings or [])
    values: dict[str, Any] = {"text": _without_surrogates(text, warnings, "text")}
    values["source_path"] = _without_surrogates(source, [], "source")
    for field, aliases in METADATA_ALIASES.items():
        for alias in aliases:
            value = meta.get(alias)
            if value not in (None, "", []):
                try:
                    value = _field_value(field, value)
                except ValueError as exc:
                    return ReadError(source, f"{alias}: {exc}")
                values[field] = _without_surrogates(value, warnings, alias)
                break
    try:
        return ArticleCreate(**values, warnings=warnings)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return ReadError(source, f"{field}: {first['msg'].removeprefix('Value error, ')}")


def _json_document(source: str, text: str, warnings: list[str]) -> Iterator[Item]:
    """Articles from a JSON document: one object, or a list of objects."""
    try:
        data = _json_loads(text)
    except ValueError as exc:
        yield ReadError(source, str(exc))
        return
    if not isinstance(data, list):
        yield _record(source, data, warnings)
        return
    for i, record in enumerate(data):
        yield _record(f"{source}[{i}]", record, warnings)


def _json_loads(text: str) -> Any:
    """JSON, or ValueError with a reason fit for the user (line number, or nesting)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None


def _record(source: str, record: Any, warnings: list[str] | None = None) -> Item:
    if not isinstance(record, dict):
        return ReadError(source, 'expected a JSON object with a "text" field')
    text = record.get("text")
    if not isinstance(text, str):
        return ReadError(source, 'missing "text" (the article\'s text, a string)')
    return _article(source, text, record, warnings)


MAX_FRONT_MATTER_CHARS = 64_000


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML without aliases: `*a` repeats a node by reference, so nine nested levels of them
    (a 425-byte "alias bomb") stand for billions of strings."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in front matter", event.start_mark
            )
        return super().compose_node(parent, index)


def _markdown(source: str, text: str, path: Path | None, warnings: list[str]) -> Item:
    import frontmatter
    from frontmatter.default_handlers import YAMLHandler

    handler = frontmatter.detect_format(text, frontmatter.handlers)
    meta: dict[str, Any] = {}
    content = text
    if handler is not None:
        try:
            front, content = handler.split(text)
        except ValueError:  # an opening delimiter with no closing one: no front matter
            front = None
        if front is not None:
            if len(front) > MAX_FRONT_MATTER_CHARS:
                return ReadError(
                    source, f"front matter longer than {MAX_FRONT_MATTER_CHARS:,} characters"
                )
            try:
                if isinstance(handler, YAMLHandler):
                    loaded = yaml.load(front, Loader=_FrontMatterLoader)
                else:
                    loaded = handler.load(front)
            except RecursionError:
                return ReadError(source, "unreadable front matter: nested too deeply")
            except Exception as exc:  # the YAML, TOML and JSON parsers raise many kinds
                return ReadError(source, f"unreadable front matter: {_parser_error(exc)}")
            if loaded is not None and not isinstance(loaded, dict):
                return ReadError(source, "front matter must be keys and values (title: ...)")
            meta = dict(loaded or {})
    if path and not any(meta.get(a) for a in METADATA_ALIASES["title"]):
        meta["title"] = _title_from_name(path)
    return _article(source, content, meta, warnings)


def _parser_error(exc: Exception) -> str:
    """A parser's complaint on one line: YAML's own message is several, ending in a caret."""
    problem = getattr(exc, "problem", None)
    if isinstance(problem, str):
        mark = getattr(exc, "problem_mark", None)
        return problem + (f" (line {mark.line + 1})" if mark is not None else "")
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# A document type declaration, with its internal subset ("<!DOCTYPE html [ ... ]>"):
# trafilatura leaves the subset's closing "]>" in the article text.
_DOCTYPE = re.compile(r"^\s*(?:<\?xml[^>]*\?>\s*)?<!DOCTYPE(?:[^\[>]|\[.*?\])*>", re.S | re.I)


# A tag with thousands of attributes: the HTML parser (libxml2) compares each attribute with
# every other one of its tag, so 40,000 of them took 43 s. Such a tag keeps its name only.
MAX_ATTRIBUTES = 256
_LONG_TAG = re.compile(rf"<([A-Za-z][^\s/<>]*)(\s[^<>]{{{2 * MAX_ATTRIBUTES},}})>")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def _without_attribute_floods(text: str, warnings: list[str]) -> str:
    flooded = 0

    def bare(tag: re.Match[str]) -> str:
        nonlocal flooded
        if len(_QUOTED.sub('""', tag[2]).split()) <= MAX_ATTRIBUTES:
            return tag[0]
        flooded += 1
        return f"<{tag[1]}>"

    text = _LONG_TAG.sub(bare, text)
    if flooded:
        warnings.append(
            f"{flooded} HTML tag(s) with more than {MAX_ATTRIBUTES} attributes read without them"
        )
    return text


def _html(source: str, text: str, warnings: list[str]) -> ArticleCreate | ReadError:
    import trafilatura

    text = _DOCTYPE.sub("<!DOCTYPE html>", text, count=1)
    text = _without_attribute_floods(text, warnings)
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
    return _article(source, body, meta, warnings)


def parse(source: str, raw: bytes, fmt: str, path: Path | None) -> Iterator[Item]:
    """The articles in one input's bytes. Whatever goes wrong reading them (a parser's
    RecursionError, a value no article can hold) is this input's ReadError: one bad file
    never stops a batch, the CLI's or the dashboard's."""
    count = 0
    try:
        for item in capped(source, _parse(source, raw, fmt, path)):
            count += 1
            yield item
    except Exception as exc:  # a bug or a parser's surprise: the input's error, not the run's
        where = source if count == 0 else f"{source} (after {count} item(s))"
        yield ReadError(where, f"could not be read: {_describe(exc)}")


MAX_ERRORS_PER_INPUT = 20


def capped(source: str, items: Iterable[Item]) -> Iterator[Item]:
    """The items of one input, with at most MAX_ERRORS_PER_INPUT of its errors listed and
    the rest counted in one last error: a JSON list of five million numbers is one
    input's twenty lines and a count, not five million lines."""
    errors = 0
    for item in items:
        if isinstance(item, ReadError):
            errors += 1
            if errors > MAX_ERRORS_PER_INPUT:
                continue
        yield item
    if errors > MAX_ERRORS_PER_INPUT:
        more = errors - MAX_ERRORS_PER_INPUT
        yield ReadError(source, f"and {more:,} more unreadable entries (the first "
                        f"{MAX_ERRORS_PER_INPUT} are listed)")  # fmt: skip


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    message = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _parse(source: str, raw: bytes, fmt: str, path: Path | None) -> Iterator[Item]:
    try:
        text, warnings = decode_with_warnings(raw)
    except ValueError as exc:
        yield ReadError(source, str(exc))
        return
    if fmt == "json":
        yield from _json_document(source, text, warnings)
    elif fmt == "md":
        yield _markdown(source, text, path, warnings)
    elif fmt == "html":
        yield _html(source, text, warnings)
    else:
        meta = {"title": _title_from_name(path)} if path else {}
        yield _article(source, text, meta, warnings)


def _too_big(source: str, max_bytes: int) -> ReadError:
    limit = f"{max_bytes / 1_000_000:g} MB"
    return ReadError(source, f"larger than the {limit} limit (TRACKER_MAX_ARTICLE_BYTES)")


def _jsonl_lines(item: Input, stream: IO[bytes], max_bytes: int) -> Iterator[Item]:
    """JSON Lines read line by line, so an archive of any size streams in flat memory. A
    line longer than the limit is skipped without being held in memory whole."""
    number = 0
    while True:
        raw = stream.readline(max_bytes + 1)
        if not raw:
            return
        number += 1
        source = f"{item.source}:{number}"
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # the rest of the over-long line
            yield _too_big(source, max_bytes)
            continue
        if not raw.strip():
            continue
        try:
            text, warnings = decode_with_warnings(raw)
            record = _json_loads(text)
        except ValueError as exc:  # invalid JSON, undecodable bytes, nesting
            reason = str(exc).replace(" at line 1:", ":")
            yield ReadError(source, reason if reason.startswith("invalid JSON") else
                            f"invalid JSON: {reason}")  # fmt: skip
            continue
        except Exception as exc:
            yield ReadError(source, f"could not be read: {_describe(exc)}")
            continue
        yield _record(source, record, warnings)


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
            yield from _read_one(item, max_bytes, stdin)
        except OSError as exc:  # e.g. a JSONL file deleted or unmounted while streaming
            yield ReadError(item.source, _reason(exc))
        except Exception as exc:  # whatever else: this input's error, and the batch goes on
            yield ReadError(item.source, f"could not be read: {_describe(exc)}")


class NotRegularFile(OSError):
    """A named pipe, a device or a socket: opening one can block forever (a pipe with no
    writer) and reading one never ends (/dev/zero), so it is refused, unread."""


def _special(mode: int) -> str | None:
    """What a file that is not a regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"


def open_regular_file(path: Path) -> IO[bytes]:
    """`path` opened for reading if it is a regular file (after links); else
    NotRegularFile, without opening it. (Opened without blocking, and checked again once
    open, in case it was swapped for a pipe in between.)"""
    if kind := _special(os.stat(path).st_mode):
        raise NotRegularFile(errno.EINVAL, f"not a regular file ({kind}); not read")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        if kind := _special(os.fstat(fd).st_mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({kind}); not read")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_one(item: Input, max_bytes: int, stdin: IO[bytes] | None) -> Iterator[Item]:
    try:
        if item.fmt == "jsonl":
            if item.path is None:
                yield from capped(item.source, _jsonl_lines(item, stdin or sys.stdin.buffer,
                                                            max_bytes))  # fmt: skip
            else:
                with open_regular_file(item.path) as stream:
                    yield from capped(item.source, _jsonl_lines(item, stream, max_bytes))
            return
        if item.path is None:
            raw = (stdin or sys.stdin.buffer).read(max_bytes + 1)
        else:
            with open_regular_file(item.path) as stream:
                if os.fstat(stream.fileno()).st_size > max_bytes:
                    yield _too_big(item.source, max_bytes)
                    return
                raw = stream.read(max_bytes + 1)  # (it may have grown since)
    except OSError as exc:
        yield ReadError(item.source, _reason(exc))
        return
    if len(raw) > max_bytes:
        yield _too_big(item.source, max_bytes)
    elif not raw.strip():
        yield ReadError(item.source, "empty file")
    else:
        yield from parse(item.source, raw, item.fmt, item.path)


def count_inputs(paths: Iterable[str]) -> int | None:
    """How many articles `paths` hold, cheaply (for a progress bar); None if unknown.
    JSON Lines files are counted in bounded chunks (a 4 GB line is never held whole);
    anything that is not a regular file is not opened."""
    total = 0
    for item in expand(paths):
        if isinstance(item, ReadError):
            total += 1
        elif item.path is None:
            return None
        elif item.fmt == "jsonl":
            try:
                with open_regular_file(item.path) as stream:
                    total += _count_records(stream)
            except OSError:
                total += 1
        else:
            total += 1  # a JSON list counts once until it is read
    return total


def _count_records(stream: IO[bytes], block: int = 1 << 20) -> int:
    """Lines that are not blank, read `block` bytes at a time."""
    count, blank = 0, True  # blank: the line read so far is only white space
    while chunk := stream.read(block):
        lines = chunk.split(b"\n")
        for line in lines[:-1]:
            if not blank or line.strip():
                count += 1
            blank = True
        blank = blank and not lines[-1].strip()
    return count + (not blank)
