"""The review queue's search box: what people type, as each database's full-text query.

The syntax is the one web search engines taught everyone:

    deficit jobs          claims with both words
    inflat                words that begin so (inflation, inflated)
    "wage growth"         the exact phrase
    deficit OR debt       either word (OR in capitals binds the two words beside it:
                          `jobs deficit OR debt` is jobs, and deficit or debt)
    -Trump                without the word (or -"a phrase")
    3.1%   1,000   $40    that number exactly (not 31, 3.10, 13.1 or $40.5)

Both databases read it the same way: the parse below becomes an FTS5 expression of quoted
terms on SQLite and a tree of to_tsquery calls on PostgreSQL, from words matched by \\w+
only, so nothing typed is ever taken for query syntax. Numbers are then checked exactly
against the text with a regular expression (full-text indexes split "3.1" or keep it
whole depending on the database). PostgreSQL also matches a word's other forms ("job"
finds jobs, through its English stemmer); SQLite matches beginnings only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import sqlalchemy as sa

SYNTAX_HELP = (
    'Words match their beginnings; "quoted words" match as a phrase; OR (in capitals) '
    "between two words matches either; -word leaves out claims with it; numbers such as "
    "3.1%, 1,000 or $40 match exactly (not 31 or 3.10)."
)

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\W{0,2}(\d[\d.,]*)\W{0,2}")


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]
    prefix: bool = False  # a lone word: matches words that begin with it
    number: str | None = None  # digits with their . and , ("3.1", "1,000"): exact


@dataclass
class Search:
    """`all_of` clauses (each a list of alternatives), and `none_of` terms."""

    all_of: list[list[Term]] = field(default_factory=list)
    none_of: list[Term] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.all_of and not self.none_of


def _term(phrase: str | None, bare: str | None) -> Term | None:
    if phrase is not None:
        words = tuple(_WORD.findall(phrase))
        return Term(words) if words else None
    assert bare is not None
    if number := _NUMBER.fullmatch(bare):
        core = number.group(1).rstrip(".,")
        return Term(tuple(_WORD.findall(core)), number=core)
    words = tuple(_WORD.findall(bare))
    if not words:
        return None
    return Term(words, prefix=len(words) == 1)


def parse(text: str) -> Search:
    """Read the search box."""
    search = Search()
    join_next = False
    for match in _TOKEN.finditer(text or ""):
        negative, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare == "OR":
            join_next = bool(search.all_of)
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negative, bare = "-", bare[1:]
        term = _term(phrase, bare)
        if term is None:
            continue
        if negative:
            search.none_of.append(term)
            join_next = False
        elif join_next:
            search.all_of[-1].append(term)
            join_next = False
        else:
            search.all_of.append([term])
    return search


# --- SQLite: FTS5 ------------------------------------------------------------------------


def _fts5_term(term: Term) -> str:
    quoted = '"' + " ".join(term.words) + '"'
    return quoted + "*" if term.prefix else quoted


def fts5(search: Search) -> tuple[str | None, str | None]:
    """FTS5 expressions for the claims to keep and the claims to leave out."""
    keep = " AND ".join(
        "(" + " OR ".join(_fts5_term(t) for t in clause) + ")" for clause in search.all_of
    )
    leave_out = " OR ".join(_fts5_term(t) for t in search.none_of)
    return keep or None, leave_out or None


# --- PostgreSQL: text search ---------------------------------------------------------------

_ENGLISH = sa.literal_column("'english'::regconfig")


def _tsquery(term: Term) -> Any:
    if term.number is not None:  # the parser splits or keeps it as it did in the text
        text = f"'{term.number}'"
    elif term.prefix:
        text = f"'{term.words[0]}':*"
    else:
        text = "'" + " ".join(term.words) + "'"  # a phrase
    return sa.func.to_tsquery(_ENGLISH, sa.literal(text))


def tsquery(terms: list[list[Term]]) -> Any:
    """The clauses as one tsquery: AND of ORs."""
    clauses = [reduce(lambda a, b: a.op("||")(b), map(_tsquery, clause)) for clause in terms]
    return reduce(lambda a, b: a.op("&&")(b), clauses)


# --- Numbers, exactly ----------------------------------------------------------------------


def number_pattern(number: str) -> str:
    """A regular expression (the same in Python and PostgreSQL) for `number` standing
    alone: no digit or decimal part glued before or after it."""
    return f"(^|[^0-9.,])({re.escape(number)})($|[^0-9]|[.,]($|[^0-9]))"


def exact_numbers(search: Search, column: Any) -> list[Any]:
    """Conditions that the numbers searched for stand in `column` as typed: for clauses
    made of numbers only (a number OR a word is left to the full-text index)."""
    conditions = []
    for clause in search.all_of:
        if all(term.number for term in clause):
            alternatives = [column.regexp_match(number_pattern(t.number)) for t in clause]
            conditions.append(sa.or_(*alternatives))
    for term in search.none_of:
        if term.number:
            conditions.append(sa.not_(column.regexp_match(number_pattern(term.number))))
    return conditions
