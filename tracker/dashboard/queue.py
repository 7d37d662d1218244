"""The review queue: the claims the sidebar's filter selects, a page at a time, sorted by
the database (the whole queue, never just the page on screen). Click a row to open the
claim; switch on triage to select several and give them a status, an assignee, or dismiss
them in one action."""

from __future__ import annotations

import functools
import hashlib

import pandas as pd
import streamlit as st

from tracker.dashboard.common import (
    PAGE_SIZE,
    act,
    choices_changed,
    current_filter,
    current_sort,
    engine,
    flash,
    notice,
    queue_page_number,
    set_filter,
    set_queue_page,
    show_flash,
    who,
)
from tracker.models import CLAIM_STATUSES
from tracker.queue import NOBODY, SORT_WORDS, page_rows, status_counts, total
from tracker.review import assign, dismiss, restore, set_statuses, status_words

# Clicking one of these column headers sorts the whole queue by it.
SORT_BY_COLUMN = {
    "score": "checkworthiness",
    "id": "newest",
    "updated": "updated",
    "article": "article",
}


# Fixed widths (pixels): the claim gets the room; tests click rows and headers by position.
COLUMN_WIDTHS = {"": 24, "id": 64, "score": 72, "status": 110, "claim": 460, "claimant": 120,
                 "type": 90, "assigned to": 110, "verdict by": 110, "updated": 130,
                 "article": 160, "outlet": 100}  # fmt: skip


def _table_key() -> str:
    """The table's widget key. It names the claims on the page: when the page shows other
    claims (another page, filter or sort, or someone's change), the selection starts empty,
    so a tick can never move to a claim that was not ticked. A new number clears it after
    an action."""
    shown = hashlib.sha1(repr(st.session_state.get("queue_ids", [])).encode()).hexdigest()[:10]
    return f"queue_table_{st.session_state.get('queue_table_n', 0)}_{shown}"


def _ticked() -> list[int]:
    """The claims the reviewer ticked, by id, as the page showed them when they did."""
    state = st.session_state.get(_table_key()) or {}
    rows = (state.get("selection") or {}).get("rows") or []
    shown = st.session_state.get("queue_ids", [])
    return [shown[i] for i in rows if i < len(shown)]


def _fresh_table() -> None:
    st.session_state["queue_table_n"] = st.session_state.get("queue_table_n", 0) + 1


def _on_select(key: str, ids: list[int]) -> None:
    """A click in the table (runs before the page): a column header asks for the whole
    queue sorted by that column; outside triage, a click on a row or any of its cells
    opens the claim."""
    selection = (st.session_state.get(key) or {}).get("selection") or {}
    if selection.get("columns"):
        column = selection["columns"][0]
        sort = SORT_BY_COLUMN.get(column)
        if sort:
            st.session_state["sort"] = sort
            set_queue_page(1)
        else:
            flash(f"The queue sorts by {', '.join(SORT_BY_COLUMN)} (or the Sort box).")
        _fresh_table()
    elif not st.session_state.get("triage"):
        rows = selection.get("rows") or [cell[0] for cell in selection.get("cells") or []]
        if rows and rows[0] < len(ids):
            st.session_state["open_claim"] = ids[rows[0]]
        _fresh_table()


def _on_open_id() -> None:
    typed = (st.session_state.get("open_id") or "").strip().lstrip("#")
    if typed.isascii() and typed.isdigit():
        st.session_state["open_claim"] = int(typed)
    st.session_state["open_id"] = ""


def queue() -> None:
    """The queue, or (with `?claim=ID`) one of its claims."""
    wanted = st.session_state.pop("open_claim", None)
    if wanted is not None:  # a row clicked on this page: shown in this run, no second one
        st.query_params["claim"] = str(wanted)
    if "claim" in st.query_params:
        from tracker.dashboard.claim import claim

        claim()
        return
    show_flash()
    me = who()
    db = engine()
    flt, sort = current_filter(), current_sort()
    # What the page showed last (the reviewer acted on that): ticked ids and versions.
    # A deliberate change of view (filter, sort, page) forgets the ticks.
    view = (repr(flt), sort, queue_page_number())
    seen_before: dict[int, int] = st.session_state.get("queue_versions", {})
    same_view = st.session_state.get("queue_view") == view
    ticked = _ticked() if st.session_state.get("triage") and same_view else []
    st.session_state["queue_view"] = view

    st.header("Review queue")
    views = st.columns(4)
    views[0].button(
        "Assigned to me",
        on_click=set_filter,
        kwargs={"assignee": me.name},
        disabled=me.name is None,
        width="stretch",
    )
    views[1].button("Unassigned", on_click=set_filter, kwargs={"assignee": NOBODY}, width="stretch")
    views[2].button(
        "Waiting for a verdict",
        on_click=set_filter,
        kwargs={"statuses": ["unreviewed", "in_progress"]},
        width="stretch",
    )
    views[3].button("Dismissed", on_click=set_filter, kwargs={"dismissed": "only"}, width="stretch")

    counts = status_counts(db, flt)
    metrics = st.columns(len(counts))
    for column, (status, n) in zip(metrics, counts.items(), strict=True):
        column.metric(status_words(status), n)
    matching = total(counts, flt)
    pages = max(1, -(-matching // PAGE_SIZE))

    summary = st.empty()
    pager = st.container()
    actions = st.container()
    table_area = st.container()
    page_no = min(queue_page_number(), pages)
    with pager:
        if pages > 1:
            # Keyed by the page it shows: each page draws a new pager whose default is that
            # page (a pager re-drawn with a changed default would fight the click).
            key = f"pager_{page_no}_{pages}"
            st.pagination(
                pages,
                default=page_no,
                key=key,
                on_change=lambda: set_queue_page(st.session_state[key]),
            )
    summary.text(
        f"{matching} claims match · {SORT_WORDS[sort]} · page {page_no} of {pages}"
        + ("" if flt.dismissed != "hide" else " · dismissed claims hidden")
    )
    rows = page_rows(db, flt, page=page_no - 1, page_size=PAGE_SIZE, sort=sort)
    st.session_state["queue_ids"] = [r.claim.id for r in rows]
    st.session_state["queue_versions"] = {r.claim.id: r.claim.version for r in rows}

    triage = st.session_state.get("triage", False)
    with table_area:
        if not rows:
            st.text("No claims match this filter.")
        else:
            _table(rows, sort, triage, ticked)
            if triage:
                with actions:
                    _triage_bar(ticked, seen_before, me)
    bottom = st.columns([2, 2, 3])
    bottom[0].toggle(
        "Select several (triage)",
        key="triage",
        persist_state="session",
        help="Click rows to select them, then act on all of them at once.",
        on_change=_fresh_table,
    )
    bottom[1].text_input(
        "Open claim by id",
        key="open_id",
        on_change=_on_open_id,
        placeholder="e.g. 1234, then Enter",
    )


def _table(rows, sort: str, triage: bool, ticked: list[int]):
    key = _table_key()
    marked = st.session_state.get("queue_row")
    table = pd.DataFrame(
        [
            {
                "": "▶" if r.claim.id == marked else "",
                "id": r.claim.id,
                "score": r.claim.checkworthiness,
                "status": status_words(r.claim.status)
                + (" · dismissed" if r.claim.dismissed else ""),
                "claim": r.claim.text,
                "claimant": r.claim.claimant or "",
                "type": status_words(r.claim.claim_type),
                "assigned to": r.claim.assignee or "",
                "verdict by": r.claim.reviewed_by or "",
                "updated": r.claim.updated_at.strftime("%Y-%m-%d %H:%M"),
                "article": r.article_title or "",
                "outlet": r.outlet or "",
            }
            for r in rows
        ]
    )
    arrows = {column: f"{column} ▼" for column, key in SORT_BY_COLUMN.items() if key == sort}
    config = {
        column: st.column_config.Column(arrows.get(column, column), width=width)
        for column, width in COLUMN_WIDTHS.items()
    }
    config["score"] = st.column_config.NumberColumn(
        arrows.get("score", "score"), format="%.2f", width=COLUMN_WIDTHS["score"]
    )
    return st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(rows), 38 + 35 * PAGE_SIZE),
        column_config=config,
        on_select=functools.partial(_on_select, key, [r.claim.id for r in rows]),
        # Selecting columns switches off the browser's own sort, which would order only
        # the rows of this page; a header click sorts the whole queue instead (_on_select).
        selection_mode=["multi-row", "single-column"]
        if triage
        else ["single-row", "single-column", "single-cell"],
        # Ticked claims stay ticked when someone else's change reorders the page.
        selection_default={
            "selection": {"rows": [i for i, r in enumerate(rows) if r.claim.id in set(ticked)]}
        }
        if triage and ticked
        else None,
        key=key,
    )


def _triage_bar(chosen: list[int], seen: dict[int, int], me) -> None:
    """Act on the ticked claims (by id, as the page showed them): one transaction, one
    history entry per claim, refused when any of them changed since."""
    if not chosen:
        st.caption("Tick the boxes at the left of the rows to act on several claims at once.")
        return
    if not me.can_edit:
        st.info(
            "Give your name to act on claims."
            if me.name is None
            else f"Your role ({me.role}) cannot change claims; an admin gives roles."
        )
        return
    actor = me.name
    st.text(
        f"{len(chosen)} selected: "
        + ", ".join(f"#{i}" for i in chosen[:12])
        + (" ..." if len(chosen) > 12 else "")
    )
    versions = {claim_id: seen.get(claim_id, -1) for claim_id in chosen}
    db = engine()
    status_col, assign_col, dismiss_col = st.columns([3, 3, 2])
    with status_col.form("triage_status", border=False):
        status = st.selectbox(
            "Status", CLAIM_STATUSES, format_func=status_words, key="triage_status_value"
        )
        note = st.text_input("Note (optional)", key="triage_note")
        if st.form_submit_button(f"Set status of {len(chosen)}") and act(
            set_statuses, db, versions, status, actor=actor, note=note
        ):
            _done(f"{len(chosen)} claims: {status_words(status)}.")
    with assign_col.form("triage_assign", border=False):
        person = st.text_input(
            "Assign to",
            key="triage_person",
            value=actor,
            help="Anyone's name (e-mail with a login); empty: nobody",
        )
        if st.form_submit_button(f"Assign {len(chosen)}") and act(
            assign, db, versions, person or None, actor=actor
        ):
            choices_changed()
            _done(
                f"{len(chosen)} claims assigned." if person else f"{len(chosen)} claims unassigned."
            )
    with dismiss_col:
        st.write("")
        if st.button(
            f"Dismiss {len(chosen)}",
            help="Not check-worthy: kept and counted, hidden from the queue, restorable",
        ) and act(dismiss, db, versions, actor=actor):
            _done(f"{len(chosen)} claims dismissed (see 'Dismissed' to restore them).")
        if st.button(f"Restore {len(chosen)}") and act(restore, db, versions, actor=actor):
            _done(f"{len(chosen)} claims restored to the queue.")
    if st.session_state.pop("stale", False):
        notice("warning", "The table now shows the newer state; check it and apply again.")


def _done(message: str) -> None:
    flash(message)
    _fresh_table()
    st.rerun()
