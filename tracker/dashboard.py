"""The Streamlit pages. Each is a thin layer over the library (queue, review, ingest,
export): everything the dashboard does, the CLI or a script can do the same way.

Article text and model output are untrusted: they are shown only through st.text,
st.code and st.dataframe, which render text as text, never as Markdown or HTML.
"""

from __future__ import annotations

import io
import re
from datetime import date

import pandas as pd
import streamlit as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tracker.claimreview import ClaimReviewError, prior_checks, write_claimreview
from tracker.config import Settings, get_settings
from tracker.db import get_engine
from tracker.export import ExportFilter, export
from tracker.ingest import import_article
from tracker.matching import cluster_of, conflict, decide, matches_of, set_cluster_status
from tracker.models import (
    CLAIM_STATUSES,
    CLAIM_TYPES,
    ROLES,
    STANCES,
    Article,
    ArticleCreate,
    Claim,
    ReviewEvent,
    SourceCreate,
)
from tracker.queue import QueueFilter, distinct_values, next_claim, queue_page, status_counts
from tracker.readers import FORMATS, ReadError, parse
from tracker.review import (
    NotAllowed,
    StaleEdit,
    add_source,
    capped,
    delete_claim,
    edit_claim,
    history,
    remove_source,
    role_of,
    set_role,
    set_status,
    sources,
)

PAGE_SIZE = 50


# --- Shared -----------------------------------------------------------------------------


def engine() -> Engine:
    return get_engine(get_settings().database_url)


def settings() -> Settings:
    return get_settings()


def who() -> tuple[str | None, str]:
    """The person at the keyboard and their role (set by `sign_in` on every run)."""
    return st.session_state.get("identity", (None, "viewer"))


def sign_in() -> tuple[str | None, str]:
    """The sidebar's identity box, on every page. With OIDC configured in
    .streamlit/secrets.toml, the login names the person; otherwise they give a name
    before they can change anything. Their role comes from the database."""
    identity = _identify()
    st.session_state["identity"] = identity
    return identity


def _identify() -> tuple[str | None, str]:
    if _login_configured():
        if not st.user.is_logged_in:
            st.sidebar.button("Log in", on_click=st.login)
            return None, "viewer"
        # Roles are keyed on the verified e-mail address, not the editable display name.
        name = st.user.get("email") or st.user.get("name")
        st.sidebar.text(f"Signed in as {name}")
        st.sidebar.button("Log out", on_click=st.logout)
        verified = True
    else:
        name = st.sidebar.text_input(
            "Your name", key="reviewer_name", help="Every change records who made it."
        ).strip()
        verified = settings().trust_typed_names
    if not name:
        st.sidebar.info("Give your name to review claims.")
        return None, "viewer"
    role = role_of(engine(), name)
    if not verified:
        role = capped(role, settings().default_role)
    st.sidebar.text(f"Role: {role}")
    return name, role


def _login_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def notice(kind: str, headline: str, detail: str | None = None) -> None:
    """A coloured message whose untrusted part is shown as plain text: st.error and its
    kin render Markdown, so only our own fixed words go there."""
    getattr(st, kind)(headline)
    if detail:
        st.text(detail)


def can_edit(role: str) -> bool:
    return role in ("reviewer", "admin")


def queue_filter() -> QueueFilter:
    return QueueFilter.from_params(st.query_params.to_dict())


def int_param(name: str) -> int | None:
    """A whole-number URL parameter, or None when absent or malformed."""
    raw = st.query_params.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


SORT_CHOICES = ["checkworthiness", "newest", "updated", "article"]


def act(action, *args, seen_key: str | None = None, **kwargs) -> bool:
    """Run a review action, turning refusals into messages instead of tracebacks.

    `seen_key` names the claim version the reviewer has seen; after a save, or after a
    refusal that showed them the newer state, it moves to the current version."""
    try:
        result = action(*args, **kwargs)
    except StaleEdit as stale:
        notice("error", "Not saved: someone else changed this claim first.", str(stale))
        st.text(f"Now: status {stale.current.status}, claim: {stale.current.text}")
        if seen_key:
            st.session_state[seen_key] = stale.current.version
        return False
    except (NotAllowed, ValueError, LookupError, ValidationError) as refused:
        notice("error", "Not done.", str(refused))
        return False
    if seen_key and isinstance(result, Claim):
        st.session_state[seen_key] = result.version
    return True


# --- Review queue -----------------------------------------------------------------------


def queue() -> None:
    st.header("Review queue")
    flt = queue_filter()
    db = engine()
    with st.sidebar.expander("Filters", expanded=True):
        search = st.text_input("Search claims and quotes", value=flt.search or "")
        statuses = st.multiselect("Status", CLAIM_STATUSES, default=list(flt.statuses))
        types = st.multiselect("Claim type", CLAIM_TYPES, default=list(flt.claim_types))
        outlets = ["", *distinct_values(db, Article.outlet)]
        outlet = st.selectbox(
            "Outlet", outlets, index=outlets.index(flt.outlet) if flt.outlet in outlets else 0
        )
        claimants = ["", *distinct_values(db, Claim.claimant)]
        claimant = st.selectbox(
            "Claimant",
            claimants,
            index=claimants.index(flt.claimant) if flt.claimant in claimants else 0,
        )
        low, high = st.slider(
            "Check-worthiness", 0.0, 1.0, (flt.min_score, flt.max_score), step=0.05
        )
        since = st.date_input("Published since", value=flt.since, format="YYYY-MM-DD")
        until = st.date_input("Published until", value=flt.until, format="YYYY-MM-DD")
        article_id = st.number_input(
            "Article id", min_value=0, step=1, value=flt.article_id or 0,
            help="0: every article",
        )  # fmt: skip
        per_cluster = st.checkbox("One row per cluster", value=flt.one_per_cluster)
        chosen_sort = st.query_params.get("sort", "checkworthiness")
        sort = st.selectbox(
            "Sort",
            SORT_CHOICES,
            index=SORT_CHOICES.index(chosen_sort) if chosen_sort in SORT_CHOICES else 0,
        )
    flt = QueueFilter(
        statuses=tuple(statuses),
        claim_types=tuple(types),
        claimant=claimant or None,
        outlet=outlet or None,
        article_id=int(article_id) or None,
        since=since if isinstance(since, date) else None,
        until=until if isinstance(until, date) else None,
        min_score=low,
        max_score=high,
        search=search or None,
        one_per_cluster=per_cluster,
    )
    page = int_param("page") or 0
    view = {**flt.to_params(), **({"sort": sort} if sort != "checkworthiness" else {})}
    if st.session_state.get("queue_view") not in (None, view):
        page = 0  # a new filter starts on its first page
    st.session_state["queue_view"] = view
    st.query_params.from_dict({**view, **({"page": str(page)} if page else {})})

    counts = status_counts(db, flt)
    columns = st.columns(len(counts))
    for column, (status, count) in zip(columns, counts.items(), strict=True):
        column.metric(status.replace("_", " "), count)
    rows, total = queue_page(db, flt, page=page, page_size=PAGE_SIZE, sort=sort)
    st.text(f"{total} claims match; page {page + 1} of {max(1, -(-total // PAGE_SIZE))}")
    if not rows:
        st.text("No claims match these filters.")
        return
    table = pd.DataFrame(
        [
            {
                "id": r.claim.id,
                "score": r.claim.checkworthiness,
                "status": r.claim.status,
                "claim": r.claim.text,
                "claimant": r.claim.claimant or "",
                "type": r.claim.claim_type,
                "article": r.article_title or "",
                "outlet": r.outlet or "",
            }
            for r in rows
        ]
    )
    picked = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="queue_table",
    )
    chosen = picked.selection.rows if picked and picked.selection else []
    if chosen:
        open_claim(int(table.iloc[chosen[0]]["id"]), flt)
    left, right = st.columns(2)
    if page > 0 and left.button("Previous page"):
        st.query_params["page"] = str(page - 1)
        st.rerun()
    if (page + 1) * PAGE_SIZE < total and right.button("Next page"):
        st.query_params["page"] = str(page + 1)
        st.rerun()
    typed = st.text_input("Open claim by id", key="open_id").strip()
    if typed.isascii() and typed.isdigit():
        open_claim(int(typed), flt)


def open_claim(claim_id: int, flt: QueueFilter | None = None) -> None:
    params = {**(flt or queue_filter()).to_params(), "claim": str(claim_id)}
    if st.query_params.get("sort"):
        params["sort"] = st.query_params["sort"]
    st.switch_page(CLAIM_PAGE, query_params=params)


# --- Claim ------------------------------------------------------------------------------


def _context(text: str, start: int, end: int, paragraphs: int = 1) -> tuple[str, str]:
    """The text before and after the quote: its own paragraph, and `paragraphs` more on
    each side."""
    breaks = list(re.finditer(r"\n\s*\n", text))
    before = [m.end() for m in breaks if m.end() <= start]
    after = [m.start() for m in breaks if m.start() >= end]
    first = before[-1 - paragraphs] if len(before) > paragraphs else 0
    last = after[paragraphs] if len(after) > paragraphs else len(text)
    return text[first:start], text[end:last]


def claim() -> None:
    db = engine()
    claim_id = int_param("claim")
    if claim_id is None:
        st.header("Claim")
        st.text("Pick a claim in the review queue.")
        return
    with Session(db) as session:
        current = session.get(Claim, claim_id)
        article = session.get(Article, current.article_id) if current else None
    if current is None or article is None:
        st.error(f"There is no claim {claim_id}.")
        return
    name, role = who()
    st.header(f"Claim {current.id}")
    st.text(current.text)
    meta = st.columns(4)
    meta[0].metric("Status", current.status.replace("_", " "))
    meta[1].metric("Check-worthiness", f"{current.checkworthiness:.2f}")
    meta[2].metric(
        "Offline score", "-" if current.offline_score is None else f"{current.offline_score:.2f}"
    )
    meta[3].metric("Version", current.version)
    st.text(f"Claimant: {current.claimant or '(the article itself)'}   Type: {current.claim_type}")
    prompt = (current.prompt_hash or "")[:12]
    st.text(
        f"Provenance: {current.model or 'unknown model'}, prompt {prompt}, "
        f"{current.created_at:%Y-%m-%d %H:%M} UTC"
    )
    st.subheader("In the article")
    st.text(f"{article.title or 'Untitled'} — {article.outlet or ''} {article.url or ''}")
    before, after = _context(article.text, current.quote_start, current.quote_end)
    if before.strip():
        st.text(before.strip())
    st.code(current.quote, language=None, wrap_lines=True)
    if after.strip():
        st.text(after.strip())

    flt = queue_filter()
    upcoming = next_claim(db, flt, claim_id, st.query_params.get("sort", "checkworthiness"))
    editable = name is not None and can_edit(role)
    # The version this reviewer has seen: a save made against it is refused if anyone
    # saved the claim in between (the page itself reloads on every interaction).
    seen_key = f"seen_version_{claim_id}"
    # A re-extraction can delete a claim and reuse its id (SQLite); the creation time tells
    # a replaced claim from the one the reviewer saw.
    born_key = f"seen_created_{claim_id}"
    born = current.created_at.isoformat()
    replaced = st.session_state.setdefault(born_key, born) != born
    if replaced:
        st.session_state[born_key] = born
        st.session_state.pop(seen_key, None)
        editable = False
        st.warning(
            "This claim was replaced by a new extraction since you opened it: check it again."
        )
    seen = st.session_state.setdefault(seen_key, current.version)
    if seen != current.version:
        st.warning("This claim changed since you opened it; the page shows the newer state.")
    related = matches_of(db, claim_id)
    cluster = cluster_of(db, claim_id)
    cluster_key = f"seen_cluster_{claim_id}"
    seen_cluster = st.session_state.setdefault(cluster_key, {m.id: m.version for m in cluster})
    if related or len(cluster) > 1:
        st.subheader("The same claim elsewhere")
        if len(cluster) > 1:
            st.text(
                f"In a cluster of {len(cluster)} claims: {', '.join(str(c.id) for c in cluster)}"
            )
        for match, other in related:
            left, middle, right = st.columns([6, 1, 1])
            differs = conflict(current.text, other.text)
            warning = f" (careful: {differs})" if differs else ""
            left.text(f"[{match.state}, {match.score:.2f}{warning}] claim {other.id}: {other.text}")
            if match.state == "suggested":
                if middle.button("Same", key=f"confirm_{match.id}", disabled=not editable) and act(
                    decide, db, match.id, True, actor=name or ""
                ):
                    st.session_state.pop(cluster_key, None)  # the cluster has grown
                    st.rerun()
                if right.button(
                    "Different", key=f"reject_{match.id}", disabled=not editable
                ) and act(decide, db, match.id, False, actor=name or ""):
                    st.rerun()

    checked_before = prior_checks(db, current.text)
    if checked_before:
        st.subheader("Already checked")
        for check, score in checked_before:
            when = f"{check.date_published:%Y-%m-%d}" if check.date_published else "undated"
            differs = conflict(current.text, check.claim_reviewed)
            warning = f"; careful: {differs}" if differs else ""
            st.text(
                f"{check.organisation or 'Someone'}: {check.rating or 'no rating'} ({when}, "
                f"similarity {score:.0f}{warning})\n{check.claim_reviewed}\n{check.url or ''}"
            )

    st.subheader("Verdict")
    with st.form("status"):
        status = st.radio(
            "Status", CLAIM_STATUSES, index=CLAIM_STATUSES.index(current.status), horizontal=True
        )
        note = st.text_area("Note")
        whole_cluster = st.checkbox(
            f"Apply to the whole cluster ({len(cluster)} claims)", disabled=len(cluster) < 2
        )
        save, save_next = st.columns(2)
        saved = save.form_submit_button("Save", disabled=not editable)
        saved_next = save_next.form_submit_button("Save and next", disabled=not editable)
    if (saved or saved_next) and whole_cluster:
        if act(
            set_cluster_status, db, claim_id, status, actor=name or "", seen=seen_cluster,
            note=note or None,
        ):  # fmt: skip
            st.session_state.pop(seen_key, None)
            st.session_state.pop(cluster_key, None)
            st.rerun()
        else:
            st.session_state.pop(cluster_key, None)  # show the newer state; save again to apply
    elif (saved or saved_next) and act(
        set_status, db, claim_id, status, actor=name or "", expected_version=seen,
        note=note or None, seen_key=seen_key,
    ):  # fmt: skip
        st.toast("Saved.")
        if saved_next and upcoming:
            open_claim(upcoming, flt)
        st.rerun()

    st.subheader("Sources")
    for source in sources(db, claim_id):
        left, right = st.columns([5, 1])
        left.text(
            f"[{source.stance}] {source.title or source.url}\n{source.url}\n{source.note or ''}"
        )
        if right.button("Remove", key=f"remove_{source.id}", disabled=not editable) and act(
            remove_source, db, source.id, actor=name or ""
        ):
            st.rerun()
    with st.form("source", clear_on_submit=True):
        url = st.text_input("URL")
        title = st.text_input("Title")
        stance = st.selectbox("Stance", STANCES, index=STANCES.index("context"))
        source_note = st.text_input("Note")
        if st.form_submit_button("Add source", disabled=not editable):
            try:
                new = SourceCreate(
                    url=url, title=title or None, stance=stance, note=source_note or None
                )
            except ValidationError:
                st.error("That is not a web address (http:// or https://).")
            else:
                if act(add_source, db, claim_id, new, actor=name or ""):
                    st.rerun()

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
            if changes and act(
                edit_claim, db, claim_id, actor=name or "", expected_version=seen,
                seen_key=seen_key, **changes,
            ):  # fmt: skip
                st.rerun()
    deleting = role == "admin" and st.button("Delete this claim")
    if deleting and act(delete_claim, db, claim_id, actor=name or ""):
        st.switch_page(QUEUE_PAGE)

    st.subheader("History")
    events = history(db, claim_id)
    if events:
        st.dataframe(
            pd.DataFrame([_event_row(e) for e in events]), hide_index=True, width="stretch"
        )
    else:
        st.text("No changes yet.")
    if upcoming and st.button("Next claim"):
        open_claim(upcoming, flt)


def _event_row(event: ReviewEvent) -> dict:
    return {
        "when": f"{event.at:%Y-%m-%d %H:%M}",
        "who": event.actor,
        "what": event.action,
        "field": event.field or "",
        "from": event.from_value or "",
        "to": event.to_value or "",
        "note": event.note or "",
    }


# --- Articles ---------------------------------------------------------------------------


def articles() -> None:
    st.header("Articles")
    db = engine()
    _name, role = who()
    with Session(db) as session:
        counts = dict(
            session.exec(select(Claim.article_id, func.count()).group_by(Claim.article_id)).all()
        )
        rows = session.exec(select(Article).order_by(Article.id.desc()).limit(500)).all()
    if not rows:
        st.text("No articles yet. Import some on the Import page or with `tracker import`.")
        return
    table = pd.DataFrame(
        [
            {
                "id": a.id,
                "title": a.title or "",
                "outlet": a.outlet or "",
                "state": a.extraction_state,
                "claims": counts.get(a.id, 0),
                "error": a.extraction_error or "",
            }
            for a in rows
        ]
    )
    picked = st.dataframe(
        table, hide_index=True, width="stretch", on_select="rerun",
        selection_mode="single-row", key="articles_table",
    )  # fmt: skip
    chosen = picked.selection.rows if picked and picked.selection else []
    wanted = int_param("article")
    if chosen:
        article = rows[chosen[0]]
        st.query_params["article"] = str(article.id)
    elif wanted is not None and (found := [a for a in rows if a.id == wanted]):
        article = found[0]
    else:
        return
    st.subheader(f"Article {article.id}")
    st.text(article.title or "(no title)")
    st.text(f"{article.outlet or ''} {article.url or ''}  state: {article.extraction_state}")
    if article.extraction_error:
        notice("error", "Extraction failed:", article.extraction_error)
    if role == "admin" and st.button("Re-extract"):
        data = ArticleCreate(text=article.text, title=article.title)
        with st.spinner("Extracting..."):
            outcome = import_article(db, data, settings(), force=True)
        st.text(f"{outcome.state}: {outcome.claims} claims {outcome.error or ''}")
    with Session(db) as session:
        claims = session.exec(
            select(Claim).where(Claim.article_id == article.id).order_by(Claim.quote_start)
        ).all()
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": c.id,
                    "status": c.status,
                    "score": c.checkworthiness,
                    "claim": c.text,
                    "quote": c.quote,
                }
                for c in claims
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.text(article.text)


# --- Import -----------------------------------------------------------------------------


def importer() -> None:
    st.header("Import")
    db = engine()
    _name, role = who()
    if not can_edit(role):
        st.info("Importing needs the reviewer role (and your name in the sidebar).")
        return
    extractor = "the offline extractor" if settings().uses_offline else f"{settings().model}"
    st.text(f"Claims will be extracted with {extractor}.")
    with st.form("paste"):
        title = st.text_input("Title")
        url = st.text_input("URL")
        outlet = st.text_input("Outlet")
        text = st.text_area("Article text", height=240)
        uploads = st.file_uploader(
            "Or upload files", type=[s.lstrip(".") for s in FORMATS], accept_multiple_files=True
        )
        go = st.form_submit_button("Import and extract")
    if not go:
        return
    items: list[ArticleCreate | ReadError] = []
    if text.strip():
        try:
            items.append(ArticleCreate(text=text, title=title, url=url, outlet=outlet))
        except ValidationError as exc:
            items.append(ReadError("pasted text", exc.errors()[0]["msg"]))
    for upload in uploads or []:
        fmt = FORMATS.get("." + upload.name.rsplit(".", 1)[-1].lower(), "txt")
        items.extend(parse(upload.name, upload.getvalue(), fmt, None))
    if not items:
        st.warning("Paste a text or choose files.")
        return
    progress = st.progress(0.0, text="Importing...")
    for number, item in enumerate(items, 1):
        if isinstance(item, ReadError):
            notice("error", "Could not read an input:", f"{item.source}: {item.reason}")
        else:
            if outlet and not item.outlet:
                item = item.model_copy(update={"outlet": outlet})
            outcome = import_article(db, item, settings())
            label = item.title or item.source_path or "article"
            if outcome.state == "failed":
                notice("error", "Extraction failed:", f"{label}: {outcome.error}")
            else:
                notice("success", f"{outcome.claims} claims ({outcome.state}).", label)
                if outcome.article_id:
                    st.page_link(
                        QUEUE_PAGE, label=f"Review the claims of article {outcome.article_id}",
                        query_params={"article_id": str(outcome.article_id)},
                    )  # fmt: skip
        progress.progress(number / len(items), text=f"{number} of {len(items)}")


# --- Overview ---------------------------------------------------------------------------


def overview() -> None:
    st.header("Overview")
    db = engine()
    with Session(db) as session:
        by_day = session.exec(
            select(func.date(Claim.updated_at), Claim.status, func.count()).group_by(
                func.date(Claim.updated_at), Claim.status
            )
        ).all()
        by_outlet = session.exec(
            select(Article.outlet, func.count())
            .join(Claim, Claim.article_id == Article.id)
            .group_by(Article.outlet)
            .order_by(func.count().desc())
            .limit(15)
        ).all()
        by_claimant = session.exec(
            select(Claim.claimant, func.count())
            .where(Claim.claimant.is_not(None))
            .group_by(Claim.claimant)
            .order_by(func.count().desc())
            .limit(15)
        ).all()
    if not by_day:
        st.text("No claims yet.")
        return
    st.subheader("Claims by status, by day of their last change")
    frame = pd.DataFrame(by_day, columns=["day", "status", "claims"])
    st.bar_chart(frame, x="day", y="claims", color="status")
    left, right = st.columns(2)
    left.subheader("By outlet")
    left.bar_chart(pd.DataFrame(by_outlet, columns=["outlet", "claims"]).fillna("(none)"),
                   x="outlet", y="claims")  # fmt: skip
    right.subheader("By claimant")
    right.bar_chart(pd.DataFrame(by_claimant, columns=["claimant", "claims"]), x="claimant",
                    y="claims")  # fmt: skip
    st.subheader("Most check-worthy, still unreviewed")
    rows, _ = queue_page(db, QueueFilter(statuses=("unreviewed",)), page_size=10)
    st.dataframe(
        pd.DataFrame(
            [
                {"id": r.claim.id, "score": r.claim.checkworthiness, "claim": r.claim.text}
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )


# --- Export -----------------------------------------------------------------------------


def exporter() -> None:
    st.header("Export")
    flt = queue_filter()
    described = ", ".join(f"{k}={v}" for k, v in flt.to_params().items()) or "none"
    st.text(f"Exports the claims of the review queue's current filter ({described}).")
    where = ExportFilter(queue=flt)
    for fmt, mime in (("jsonl", "application/jsonl"), ("csv", "text/csv")):
        buffer = io.StringIO()
        count = export(engine(), fmt, buffer, where)
        st.download_button(
            f"Download {count} claims as {fmt.upper()}", buffer.getvalue(),
            file_name=f"claims.{fmt}", mime=mime,
        )  # fmt: skip
    st.subheader("ClaimReview (schema.org) of the reviewed claims in this filter")
    buffer = io.StringIO()
    try:
        count = write_claimreview(engine(), settings(), buffer, where)
    except ClaimReviewError as refused:
        st.text(str(refused))
    else:
        st.download_button(
            f"Download {count} ClaimReviews (JSON-LD)", buffer.getvalue(),
            file_name="claimreview.json", mime="application/ld+json",
        )  # fmt: skip


# --- People -----------------------------------------------------------------------------


def people() -> None:
    st.header("People")
    name, role = who()
    if role != "admin":
        st.info("Managing roles needs the admin role.")
        return
    with st.form("role"):
        person = st.text_input("Name")
        new_role = st.selectbox("Role", ROLES)
        if st.form_submit_button("Set role") and act(
            set_role, engine(), person, new_role, actor=name or ""
        ):
            notice("success", f"Role set: {new_role}.", person)


QUEUE_PAGE = st.Page(queue, title="Review queue", url_path="queue", default=True)
CLAIM_PAGE = st.Page(claim, title="Claim", url_path="claim")
PAGES = [
    QUEUE_PAGE,
    CLAIM_PAGE,
    st.Page(articles, title="Articles", url_path="articles"),
    st.Page(importer, title="Import", url_path="import"),
    st.Page(overview, title="Overview", url_path="overview"),
    st.Page(exporter, title="Export", url_path="export"),
    st.Page(people, title="People", url_path="people"),
]
