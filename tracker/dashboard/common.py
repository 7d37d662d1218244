"""What every dashboard page shares: the database, who is at the keyboard, the queue's
filter, messages, and the step from a page to a claim.

The filter widgets live in the sidebar and are drawn by app.py before any page runs, each
bound to a URL query parameter (`bind="query-params"`). So there is one filter state for
the queue, the claim page's "Save and next", Overview and Export; it survives page
switches and reloads, and a link opens the same view. Pages read it with
`current_filter()`; they never build their own copy from the URL.

Article text and model output are untrusted: pages show them only through st.text,
st.code, st.dataframe and the article component, which render text as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tracker.config import Settings, get_settings
from tracker.db import get_engine
from tracker.models import CLAIM_STATUSES, CLAIM_TYPES, Article, Claim
from tracker.people import (
    RANK,
    ROLES_HELP,
    NotAllowed,
    canonical_name,
    capped,
    clean_name,
    role_of,
)
from tracker.queue import (
    DISMISSED_CHOICES,
    NOBODY,
    SORT_WORDS,
    QueueFilter,
    distinct_values,
)
from tracker.review import StaleEdit, status_words
from tracker.search import SYNTAX_HELP

PAGE_SIZE = 50

# What each status means at a glance, wherever it is drawn (charts, highlights).
STATUS_COLOURS = {
    "unreviewed": "#9e9e9e",  # grey: nobody has looked
    "in_progress": "#1e88e5",  # blue: someone is on it
    "checked": "#2e7d32",  # green: holds up
    "disputed": "#c62828",  # red: does not hold up
    "inconclusive": "#f9a825",  # amber: cannot tell
    "dismissed": "#d7ccc8",  # pale: not check-worthy
}


def engine() -> Engine:
    return get_engine(settings().database_url)


def settings() -> Settings:
    return get_settings()


# --- Who is at the keyboard --------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    name: str | None
    role: str
    verified: bool  # a login named them (OIDC), not a typed name

    @property
    def can_edit(self) -> bool:
        return self.name is not None and RANK[self.role] >= RANK["reviewer"]

    @property
    def is_admin(self) -> bool:
        return self.name is not None and self.role == "admin"


ANONYMOUS = Identity(None, "viewer", False)


def who() -> Identity:
    """The person at the keyboard (set by `sign_in`, which app.py runs before each page)."""
    return st.session_state.get("identity", ANONYMOUS)


def sign_in() -> Identity:
    """The sidebar's identity box. With OIDC configured in .streamlit/secrets.toml, the
    login names the person (by e-mail) and survives reloads; otherwise a typed name, kept
    for the whole browser session (every page, every rerun). The role comes from the
    database; a typed name gets at most the default role."""
    identity = _identify()
    st.session_state["identity"] = identity
    return identity


def _identify() -> Identity:
    if login_configured():
        if not st.user.is_logged_in:
            st.sidebar.button("Log in", on_click=st.login, type="primary")
            st.sidebar.caption("Log in to review claims.")
            return ANONYMOUS
        # Roles are keyed on the verified e-mail address, not the editable display name.
        typed = str(st.user.get("email") or st.user.get("name") or "")
        verified = bool(st.user.get("email"))
        st.sidebar.text(f"Signed in as {typed}")
        st.sidebar.button("Log out", on_click=st.logout)
    else:
        typed = st.sidebar.text_input(
            "Your name",
            key="reviewer_name",
            persist_state="session",
            help="Every change records who made it. Kept while this tab is open.",
        )
        verified = settings().trust_typed_names
    if not clean_name(typed or ""):  # nothing visible is no name
        st.sidebar.info("Give your name to review claims.")
        return ANONYMOUS
    name = canonical_name(engine(), typed)
    role = role_of(engine(), name)
    if not verified:
        role = capped(role, settings().default_role)
    st.sidebar.text(f"Role: {role}")
    return Identity(name, role, verified)


def login_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def roles_help() -> None:
    st.caption(ROLES_HELP)


# --- The queue's filter, in the sidebar and the URL ---------------------------------------

# Widget keys are the URL's parameter names, and QueueFilter's field names where they map.
FILTER_KEYS = (
    "search",
    "statuses",
    "claim_types",
    "outlet",
    "claimant",
    "assignee",
    "reviewer",
    "score",
    "since",
    "until",
    "article_id",
    "one_per_cluster",
    "dismissed",
    "sort",
)
DISMISSED_WORDS = {"hide": "hidden", "only": "only dismissed", "include": "shown too"}


def _new_view() -> None:
    """A changed filter starts the queue on its first page."""
    if "page" in st.query_params:
        del st.query_params["page"]
    st.session_state["queue_row"] = None


def filter_sidebar() -> None:
    """Draw the filter widgets (app.py, on every page)."""
    url = settings().database_url
    with st.sidebar.expander("Queue filter", expanded=True):
        st.caption("Applies to the queue, Save and next, Overview and Export.")
        common: dict[str, Any] = {"bind": "query-params", "on_change": _new_view}
        st.text_input("Search claims and quotes", key="search", help=SYNTAX_HELP, **common)
        st.multiselect("Status", CLAIM_STATUSES, key="statuses", format_func=status_words, **common)
        st.multiselect(
            "Claim type", CLAIM_TYPES, key="claim_types", format_func=status_words, **common
        )
        me = who().name
        people_filters = (
            ("Outlet", "outlet"),
            ("Claimant", "claimant"),
            ("Assigned to", "assignee"),
            ("Last verdict by", "reviewer"),
        )
        for label, key in people_filters:
            options = ["", NOBODY] if key == "assignee" else [""]
            options += choices(url, key)
            # A value the list does not hold (a rare claimant beyond the 500 listed, a person
            # assigned a moment ago, a link) is kept, not dropped: add it.
            wanted = [me] if key == "assignee" and me else []
            wanted += [st.query_params.get(key, ""), st.session_state.get(key) or ""]
            options += [value for value in dict.fromkeys(wanted) if value and value not in options]
            st.selectbox(label, options, key=key, format_func=_any, **common)
        st.slider("Check-worthiness", 0.0, 1.0, (0.0, 1.0), step=0.05, key="score", **common)
        years = {"min_value": date(1900, 1, 1), "max_value": date(2100, 12, 31)}
        for label, key in (("Published since", "since"), ("Published until", "until")):
            st.date_input(label, value=None, key=key, format="YYYY-MM-DD", **years, **common)
        st.number_input(
            "Article id",
            min_value=1,
            step=1,
            value=None,
            key="article_id",
            placeholder="every article",
            **common,
        )
        st.checkbox("One row per cluster", key="one_per_cluster", **common)
        st.selectbox(
            "Dismissed claims",
            DISMISSED_CHOICES,
            key="dismissed",
            format_func=DISMISSED_WORDS.get,
            **common,
        )
        st.selectbox("Sort", list(SORT_WORDS), key="sort", format_func=SORT_WORDS.get, **common)
        st.button("Clear the filter", on_click=clear_filter, width="stretch")


_CHOICE_COLUMNS = {
    "outlet": Article.outlet,
    "claimant": Claim.claimant,
    "assignee": Claim.assignee,
    "reviewer": Claim.reviewed_by,
}


@st.cache_data(ttl=60, show_spinner=False)
def choices(url: str, column: str) -> list[str]:
    """The values a filter can take (most frequent first), read at most once a minute:
    four GROUP BYs on every rerun of every page would cost more than the page itself."""
    return distinct_values(get_engine(url), _CHOICE_COLUMNS[column])


def choices_changed() -> None:
    """A new assignee or reviewer: offer them in the filter at once."""
    choices.clear()


def _any(value: str) -> str:
    return "(any)" if value == "" else value


def clear_filter() -> None:
    for key in FILTER_KEYS:
        st.session_state.pop(key, None)
    _new_view()


def set_filter(**values: Any) -> None:
    """Change filter widgets from a callback (before they are drawn), e.g. "Assigned to
    me"; the page starts again at the top."""
    st.session_state.update(values)
    _new_view()


def current_filter() -> QueueFilter:
    """The filter the sidebar shows now."""
    state = st.session_state
    low, high = state.get("score") or (0.0, 1.0)
    dismissed = state.get("dismissed") or "hide"
    return QueueFilter(
        statuses=tuple(state.get("statuses") or ()),
        claim_types=tuple(state.get("claim_types") or ()),
        claimant=state.get("claimant") or None,
        outlet=state.get("outlet") or None,
        article_id=int(state["article_id"]) if state.get("article_id") else None,
        since=state.get("since") if isinstance(state.get("since"), date) else None,
        until=state.get("until") if isinstance(state.get("until"), date) else None,
        min_score=float(low),
        max_score=float(high),
        search=(state.get("search") or "").strip() or None,
        one_per_cluster=bool(state.get("one_per_cluster")),
        assignee=state.get("assignee") or None,
        reviewer=state.get("reviewer") or None,
        dismissed=dismissed if dismissed in DISMISSED_CHOICES else "hide",
    )


def current_sort() -> str:
    sort = st.session_state.get("sort") or "checkworthiness"
    return sort if sort in SORT_WORDS else "checkworthiness"


def describe(flt: QueueFilter) -> str:
    """The filter in a line of words, for the pages that follow it (shown as text)."""
    parts = []
    for key, value in flt.to_params().items():
        if key in ("statuses", "claim_types"):
            value = ", ".join(status_words(v) for v in value.split(","))
        if key == "dismissed":
            value = DISMISSED_WORDS.get(value, value)
        parts.append(f"{key.replace('_', ' ')}: {value}")
    if flt.dismissed == "hide":
        parts.append("dismissed claims hidden")
    return "; ".join(parts)


# --- Moving between pages -----------------------------------------------------------------


def open_claim(claim_id: int) -> None:
    """Show a claim. It opens inside the queue's page (`?claim=ID` beside the filter), so
    the browser's Back returns to the queue as it was, in one step; from another page, it
    switches to the queue's page first (the filter's own parameters travel by themselves)."""
    from tracker.dashboard import page

    if st.session_state.get("on_page") == "queue":
        st.query_params["claim"] = str(claim_id)
        st.rerun()
    st.switch_page(page("queue"), query_params={"claim": str(claim_id)})


def queue_page_number() -> int:
    """The queue's page (1 is the first), kept in the URL as `page`."""
    return max(1, int_param("page") or 1)


def set_queue_page(number: int) -> None:
    if number > 1:
        st.query_params["page"] = str(number)
    elif "page" in st.query_params:
        del st.query_params["page"]


def int_param(name: str) -> int | None:
    """A whole-number URL parameter, or None when absent or malformed."""
    raw = st.query_params.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else None


# --- Messages and actions -----------------------------------------------------------------


def notice(kind: str, headline: str, detail: str | None = None) -> None:
    """A coloured message whose untrusted part is shown as plain text: st.error and its
    kin render Markdown, so only our own fixed words go there."""
    getattr(st, kind)(headline)
    if detail:
        st.text(detail)


def act(action, *args, **kwargs) -> Any | None:
    """Run a library action, turning refusals into messages instead of tracebacks.
    Returns the action's result, or None when it was refused."""
    try:
        return action(*args, **kwargs) or True
    except StaleEdit as stale:
        notice("error", "Not saved: someone else changed this first.", str(stale))
        st.session_state["stale"] = True
    except (NotAllowed, ValueError, LookupError, ValidationError) as refused:
        notice("error", "Not done.", str(refused))
    except DBAPIError as fault:  # busy, gone, read-only: what was typed stays in the form
        notice("error", "Not saved: the database could not take the change. Try again.",
               database_problem(fault))  # fmt: skip
    return None


def database_problem(fault: BaseException) -> str:
    """One line on a database fault, without SQL or parameters (they can hold text)."""
    from tracker.db import storage_problem

    return storage_problem(fault)[0]


def flash(message: str) -> None:
    """A message for the next run (a toast that survives st.rerun / a page switch)."""
    st.session_state["flash"] = message


def show_flash() -> None:
    message = st.session_state.pop("flash", None)
    if message:
        st.toast(message)
