"""Text we store or show that we did not write: secrets taken out, and nothing a terminal
or a bidirectional-text algorithm would act on.

`scrub` is the one function every stored or printed string goes through to lose the API key
(and anything shaped like one); `printable` is what every line printed to a terminal goes
through, so an article title cannot move the cursor, retitle the window or hide text.
"""

from __future__ import annotations

import re
from functools import cache

_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")

# Explicit direction marks and overrides (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM,
# RLM, ALM): they reorder what is displayed around them ("Trojan Source").
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
# ANSI/VT escape sequences (CSI ... final byte; OSC ... BEL or ST; two-byte ESC x), then
# any other C0/C1 control character except tab and newline.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def scrub(text: str, secrets: list[str]) -> str:
    """`text` without the configured secrets or anything shaped like an API key; also
    when written with JSON escapes ("\\u0073k-..."), as a server's raw answer may be."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
            if "\\u" in text:
                text = _escaped(secret).sub("[redacted]", text)
    return _KEY_PATTERN.sub("[redacted]", text)


@cache
def _escaped(secret: str) -> re.Pattern[str]:
    """`secret` with any of its characters written as a JSON \\uXXXX escape."""
    return re.compile("".join(f"(?:{re.escape(c)}|\\\\u(?i:{ord(c):04x}))" for c in secret))


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` as every database stores it: without NUL (PostgreSQL refuses it in text) and
    with each lone UTF-16 surrogate ("\\ud800" in a JSON string, which no UTF-8 encoder
    takes) as U+FFFD."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda m: "" if m[0] == "\x00" else "\ufffd", text)


def strip_bidi(text: str) -> str:
    """`text` without bidirectional overrides and marks."""
    return _BIDI.sub("", text)


def printable(text: str) -> str:
    """`text` fit for a terminal: escape sequences, control characters (but tab and
    newline) and bidirectional overrides removed."""
    return strip_bidi(_CONTROL.sub("", _ESCAPE.sub("", text)))


_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` fit for one printed line: what `printable` leaves, and every line break or
    tab as one space, so a title with newlines cannot forge lines of a summary."""
    return _LINE_BREAKS.sub(" ", printable(_LINE_BREAKS.sub(" ", text)))
