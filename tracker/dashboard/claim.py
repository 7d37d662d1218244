"""One claim: read it in its article, see what the desk and others already said about the
same claim, then give a verdict, evidence, an assignee, or dismiss it.

Every save names the version of the claim this reviewer has seen; a save over someone
else's newer change is refused and the page shows that change instead.
"""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from tracker.claimreview import prior_checks
from tracker.dashboard.common import (
    PAGE_SIZE,
    act,
    choices_changed,
    current_filter,
    current_sort,
    engine,
    flash,
    int_param,
    open_claim,
    set_queue_page,
    show_flash,
    who,
)
from tracker.matching import cluster_of, conflict, decide, related, set_cluster_status
from tracker.models import CLAIM_STATUSES, STANCES, Claim, ReviewEvent, SourceCreate
from tracker.queue import next_claim, position
from tracker.review import (
    EVENT_WORDS,
    add_source,
    assign,
    cluster_seen,
    delete_claim,
    dismiss,
    edit_claim,
    get_claim,
    history,
    remove_source,
    restore,
    set_status,
    sources,
    status_words,
)

_WEB = re.compile(r"https?://[^\s]+", re.IGNORECASE)


def back_to_queue(claim_id: int | None) -> None:
    """Return to the queue on the page and row of this claim (the filter is in the URL;
    a claim that left the filter leaves the queue on the page it was on)."""
    from tracker.dashboard import page

    if claim_id is not None:
        where = position(engine(), current_filter(), claim_id, current_sort())
        if where is not None:
            set_queue_page(where // PAGE_SIZE + 1)
        st.session_state["queue_row"] = claim_id
    if "claim" in st.query_params:
        del st.query_params["claim"]
    if st.session_state.get("on_page") == "queue":
        st.rerun()
    st.switch_page(page("queue"), query_params={k: v for k, v in st.query_params.items()
                                                 if k == "page"})  # fmt: skip


def _context(text: str, start: int, end: int, paragraphs: int = 1) -> tuple[str, str]:
    """The text before and after the quote: its own paragraph, and `paragraphs` more on
    each side."""
    breaks = list(re.finditer(r"\n\s*\n", text))
    before = [m.end() for m in breaks if m.end() <= start]
    after = [m.start() for m in breaks if m.start() >= end]
    first = before[-1 - paragraphs] if len(before) > paragraphs else 0
    last = after[paragraphs] if len(after) > paragraphs else len(text)
    return text[first:start], text[end:last]


def claim_page() -> None:
    """The claim page of old links (`/claim?claim=ID`): the claim, as the queue shows it."""
    claim()


def claim() -> None:
    wanted = st.session_state.pop("open_claim", None)
    if wanted is not None:
        open_claim(wanted)
    show_flash()
    db = engine()
    claim_id = int_param("claim")
    found = get_claim(db, claim_id) if claim_id is not None else None
    if found is None:
        st.header("Claim")
        if claim_id is not None:
            st.error(f"There is no claim {claim_id}.")
        else:
            st.text("Pick a claim in the review queue.")
        if st.button("← Back to queue"):
            back_to_queue(None)
        return
    current, article = found
    me = who()
    flt, sort = current_filter(), current_sort()
    upcoming = next_claim(db, flt, current.id, sort)

    nav = st.columns([1, 1, 4])
    if nav[0].button("← Back to queue", width="stretch"):
        back_to_queue(current.id)
    if nav[1].button("Next claim →", disabled=upcoming is None, width="stretch"):
        open_claim(upcoming)

    editable = me.can_edit
    # Every save names the version of the claim the page showed when the reviewer acted:
    # the one drawn by the previous run (then this run's becomes the next one's).
    seen_key, born_key = f"seen_version_{current.id}", f"seen_created_{current.id}"
    seen = st.session_state.get(seen_key, current.version)
    st.session_state[seen_key] = current.version
    # A re-extraction can replace a claim under the same id; its creation time tells a
    # replaced claim from the one the reviewer saw.
    born = current.created_at.isoformat()
    if st.session_state.get(born_key, born) != born:
        editable = False
        st.warning(
            "This claim was replaced by a new extraction since you opened it: check it again."
        )
    st.session_state[born_key] = born
    if seen != current.version:
        st.warning("This claim changed since you last saw it; the page shows the newer state.")
        st.text(f"Now: {status_words(current.status)}, claim: {current.text}")

    def saved(result) -> bool:
        return bool(result)

    st.header(f"Claim {current.id}")
    st.text(current.text)
    # Metrics render Markdown: only our own words and numbers go in them; names are text.
    meta = st.columns(4)
    meta[0].metric("Status", status_words(current.status))
    meta[1].metric("Check-worthiness", f"{current.checkworthiness:.2f}")
    meta[2].metric("Dismissed", "yes" if current.dismissed else "no")
    meta[3].metric("Version", current.version)
    st.text(f"Assigned to: {current.assignee or 'nobody'}")
    st.text(
        f"Claimant: {current.claimant or '(the article itself)'}   "
        f"Type: {status_words(current.claim_type)}"
    )
    if current.reviewed_by:
        when = f"{current.reviewed_at:%Y-%m-%d %H:%M}" if current.reviewed_at else ""
        st.text(
            f"Last verdict: {status_words(current.status)}, by {current.reviewed_by} {when}"
            + (f"\nNote: {current.review_note}" if current.review_note else "")
        )
    found_by = current.model or "hand"
    if current.prompt_hash:
        found_by += f", prompt {current.prompt_hash[:12]}"
    st.text(f"Found by {found_by}, {current.created_at:%Y-%m-%d %H:%M} UTC")

    cluster_key = f"seen_cluster_{current.id}"
    shown_cluster = {m.id: m.version for m in cluster_of(db, current.id)}
    seen_cluster = st.session_state.get(cluster_key, shown_cluster)
    st.session_state[cluster_key] = shown_cluster

    # Reading on the left, acting on the right: the verdict form stays beside the context.
    reading, acting = st.columns([3, 2], gap="large")
    with reading:
        _in_the_article(current, article)
        _elsewhere(current, editable, me.name)
        _prior_checks(current)
        _history(current.id)
    with acting:
        size = len(shown_cluster)  # the cluster as the page shows it now
        _verdict(current, seen, seen_cluster, size, editable, me.name, upcoming, saved)
        _assignment(current, seen, seen_cluster, size, editable, me.name, saved)
        _sources(current, editable, me.name)
        _correction(current, seen, editable, me.name, saved)
        if (
            me.is_admin
            and st.button("Delete this claim")
            and act(delete_claim, db, current.id, actor=me.name)
        ):
            flash(f"Claim {current.id} deleted.")
            back_to_queue(None)


def _in_the_article(current: Claim, article) -> None:
    from tracker.dashboard import page

    st.subheader("In the article")
    st.text(f"{article.title or 'Untitled'} — {article.outlet or ''} {article.url or ''}")
    st.page_link(
        page("articles"),
        label=f"Article {article.id} with its claims",
        query_params={"article": str(article.id)},
    )
    before, after = _context(article.text, current.quote_start, current.quote_end)
    if before.strip():
        st.text(before.strip())
    st.code(current.quote, language=None, wrap_lines=True)
    if after.strip():
        st.text(after.strip())


def _elsewhere(current: Claim, editable: bool, name: str | None) -> None:
    others = related(engine(), current.id)
    if not others:
        return
    st.subheader("The same claim elsewhere")
    for other in others:
        claim, match = other.claim, other.match
        how = f"{match.state}, similarity {match.score:.2f}" if match else "in the same cluster"
        differs = conflict(current.text, claim.text)
        verdict = status_words(claim.status) + (" (dismissed)" if claim.dismissed else "")
        if claim.rating:
            verdict += f", rated {claim.rating}"
        left, middle, right = st.columns([7, 1, 1])
        left.text(
            f"Claim {claim.id} [{how}{f'; careful: {differs}' if differs else ''}]: "
            f"{verdict}\n{claim.text}\nin: {other.article_title or 'untitled'}"
            f"{f' ({other.outlet})' if other.outlet else ''}"
            + (f"\nverdict note: {claim.review_note}" if claim.review_note else "")
        )
        left.button(
            f"Open claim {claim.id}",
            key=f"open_related_{claim.id}",
            on_click=_open_later,
            args=(claim.id,),
        )
        if match and match.state == "suggested":
            if middle.button("Same", key=f"confirm_{match.id}", disabled=not editable) and act(
                decide, engine(), match.id, True, actor=name or ""
            ):
                st.rerun()
            if right.button("Different", key=f"reject_{match.id}", disabled=not editable) and act(
                decide, engine(), match.id, False, actor=name or ""
            ):
                st.rerun()


def _open_later(claim_id: int) -> None:
    st.session_state["open_claim"] = claim_id


def _prior_checks(current: Claim) -> None:
    checked_before = prior_checks(engine(), current.text)
    if not checked_before:
        return
    st.subheader("Already checked")
    for number, (check, score) in enumerate(checked_before):
        when = f"{check.date_published:%Y-%m-%d}" if check.date_published else "undated"
        differs = conflict(current.text, check.claim_reviewed)
        warning = f"; careful: {differs}" if differs else ""
        left, right = st.columns([7, 2])
        left.text(
            f"{check.organisation or 'Someone'}: {check.rating or 'no rating'} ({when}, "
            f"similarity {score:.0f}{warning})\n{check.claim_reviewed}\n{check.url or ''}"
        )
        if check.url and _WEB.fullmatch(check.url):
            right.link_button("Read the fact-check", check.url, key=f"prior_{number}")


def _verdict(current, seen, seen_cluster, size, editable, name, upcoming, saved) -> None:
    db = engine()
    st.subheader("Verdict")
    # The form keeps what the reviewer wrote when a save is refused; the note is emptied
    # only after a save went through.
    note_key = f"verdict_note_{current.id}"
    if st.session_state.pop(f"{note_key}_saved", False):
        st.session_state[note_key] = ""
    with st.form("status"):
        status = st.radio(
            "Status",
            CLAIM_STATUSES,
            index=CLAIM_STATUSES.index(current.status),
            horizontal=True,
            format_func=status_words,
        )
        note = st.text_area(
            "Note",
            key=note_key,
            help="Why: what the evidence says. Kept in the history and exported with the verdict.",
        )
        whole = st.checkbox(f"Apply to the whole cluster ({size} claims)", disabled=size < 2)
        save, save_next = st.columns(2)
        clicked = save.form_submit_button("Save", disabled=not editable)
        clicked_next = save_next.form_submit_button("Save and next", disabled=not editable)
    if not (clicked or clicked_next):
        return
    if whole:
        done = act(
            set_cluster_status,
            db,
            current.id,
            status,
            actor=name,
            seen=seen_cluster,
            note=note or None,
        )
        if not done:
            return
    elif not saved(
        act(
            set_status, db, current.id, status, actor=name, expected_version=seen, note=note or None
        )
    ):
        return
    flash(f"Claim {current.id}: {status_words(status)}.")
    st.session_state[f"{note_key}_saved"] = True
    if clicked_next and upcoming:
        open_claim(upcoming)
    st.rerun()


def _assignment(current, seen, seen_cluster, size, editable, name, saved) -> None:
    db = engine()
    st.subheader("Assignment")
    left, right = st.columns(2)
    with left.form("assign", clear_on_submit=True, border=False):
        person = st.text_input(
            "Assign to",
            value=name or "",
            help="Anyone's name (with a login, an e-mail address); empty: nobody",
        )
        whole = st.checkbox(f"The whole cluster ({size} claims)", disabled=size < 2)
        if st.form_submit_button("Assign", disabled=not editable):
            versions = {current.id: seen}
            if whole:
                versions = cluster_seen(db, current.id, {**seen_cluster, current.id: seen})
            if saved(act(assign, db, versions, person or None, actor=name)):
                choices_changed()
                flash("Assignment saved." if person else "Assignment removed.")
                st.rerun()
    with right:
        if current.dismissed:
            st.text("Dismissed as not check-worthy: hidden from the default queue.")
            if st.button("Restore to the queue", disabled=not editable) and saved(
                act(restore, db, {current.id: seen}, actor=name)
            ):
                flash(f"Claim {current.id} restored.")
                st.rerun()
        else:
            st.text("Not check-worthy? Dismiss it: it stays counted and can be restored.")
            if st.button("Dismiss", disabled=not editable) and saved(
                act(dismiss, db, {current.id: seen}, actor=name)
            ):
                flash(f"Claim {current.id} dismissed.")
                st.rerun()


def _sources(current, editable, name) -> None:
    db = engine()
    st.subheader("Sources")
    for source in sources(db, current.id):
        left, right = st.columns([3, 1])
        left.text(
            f"[{source.stance}] {source.title or source.url}\n{source.url}\n{source.note or ''}"
        )
        if right.button("Remove", key=f"remove_{source.id}", disabled=not editable) and act(
            remove_source, db, source.id, actor=name
        ):
            st.rerun()
    with st.form("source", clear_on_submit=True):
        url = st.text_input("URL")
        title = st.text_input("Title")
        stance = st.selectbox("Stance", STANCES, index=STANCES.index("context"))
        note = st.text_input("Note")
        if st.form_submit_button("Add source", disabled=not editable):
            try:
                new = SourceCreate(url=url, title=title or None, stance=stance, note=note or None)
            except ValidationError:
                st.error("That is not a web address (http:// or https://).")
            else:
                if act(add_source, db, current.id, new, actor=name):
                    flash("Source added.")
                    st.rerun()


def _correction(current, seen, editable, name, saved) -> None:
    st.subheader("Correct the claim")
    with st.form("edit"):
        text = st.text_area("Claim", value=current.text)
        claimant = st.text_input("Claimant", value=current.claimant or "")
        rating = st.text_input(
            "Rating", value=current.rating or "", help="Published in ClaimReview, e.g. Mostly false"
        )
        if st.form_submit_button("Save correction", disabled=not editable):
            changes = {"text": text, "claimant": claimant or None, "rating": rating or None}
            changes = {k: v for k, v in changes.items() if v != getattr(current, k)}
            if changes and saved(
                act(edit_claim, engine(), current.id, actor=name, expected_version=seen, **changes)
            ):
                flash("Correction saved.")
                st.rerun()


def _history(claim_id: int) -> None:
    st.subheader("History")
    events = history(engine(), claim_id)
    if not events:
        st.text("No changes yet.")
        return
    st.dataframe(pd.DataFrame([_event_row(e) for e in events]), hide_index=True, width="stretch")


def _event_row(event: ReviewEvent) -> dict:
    def word(value: str | None) -> str:
        if value is None:
            return ""
        return status_words(value) if event.field in ("status", "dismissed") else value

    return {
        "when": f"{event.at:%Y-%m-%d %H:%M}",
        "who": event.actor,
        "what": EVENT_WORDS.get(event.action, event.action.replace("_", " ")),
        "field": event.field or "",
        "from": word(event.from_value),
        "to": word(event.to_value),
        "note": event.note or "",
    }
