"""The review queue's search box: what people type, as each database's full-text query.

The syntax is the one web search engines taught everyone (and PostgreSQL's
websearch_to_tsquery reads natively):

    deficit jobs          claims with both words (word beginnings: "inflat" finds inflation)
    "wage growth"         the exact phrase
    deficit OR debt       either word (OR in capitals)
    -Trump                without the word (or -"a phrase")
    3.1%   1,000   2001   that number exactly (not 31, 3.10 or 20012)

On SQLite the query becomes an FTS5 expression built from quoted terms only, so nothing a
user types can be taken for FTS5 syntax; on PostgreSQL websearch_to_tsquery parses it
(never raising on bad input) and matches word forms ("job" finds jobs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SYNTAX_HELP = (
    'Words match their beginnings; "quoted words" match as a phrase; OR (in capitals) '
    "between words matches either; -word leaves out claims with it; numbers such as 3.1% "
    "or 1,000 match exactly."
)

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


@dataclass
class Search:
    """A parsed search: `all_of` clauses (each a list of alternatives), `none_of` terms.
    A term is the tuple of its words (several for a phrase or a number like 3.1)."""

    all_of: list[list[tuple[tuple[str, ...], bool]]] = field(default_factory=list)
    none_of: list[tuple[tuple[str, ...], bool]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.all_of and not self.none_of


def parse(text: str) -> Search:
    """Read the search box. Each term is (words, prefix?): a lone word matches words that
    begin with it; phrases, numbers and words joined by punctuation match exactly."""
    search = Search()
    join_next = False
    for match in _TOKEN.finditer(text or ""):
        negative, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare == "OR":
            join_next = bool(search.all_of)
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negative, bare = "-", bare[1:]
        words = tuple(_WORD.findall(phrase if phrase is not None else bare))
        if not words:
            continue
        prefix = phrase is None and len(words) == 1 and not words[0].isdigit()
        term = (words, prefix)
        if negative:
            search.none_of.append(term)
            join_next = False
        elif join_next:
            search.all_of[-1].append(term)
            join_next = False
        else:
            search.all_of.append([term])
    return search


def _fts5_term(term: tuple[tuple[str, ...], bool]) -> str:
    words, prefix = term
    quoted = '"' + " ".join(w.replace('"', "") for w in words) + '"'
    return quoted + "*" if prefix else quoted


def fts5(search: Search) -> tuple[str | None, str | None]:
    """FTS5 expressions for the claims to keep and the claims to leave out."""
    keep = " AND ".join(
        "(" + " OR ".join(_fts5_term(t) for t in clause) + ")" for clause in search.all_of
    )
    leave_out = " OR ".join(_fts5_term(t) for t in search.none_of)
    return keep or None, leave_out or None
