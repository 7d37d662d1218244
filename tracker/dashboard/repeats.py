"""Repeats: checked claims said again in articles the feeds brought in, newest first. Each
alert shows the new claim, where it was said (and every other outlet that ran the same
text), what it matched with its verdict or rating, and the score; a reviewer opens the claim
or acknowledges the alert once handled. Alert text comes from articles and other sites: it
is shown as plain text only."""

from __future__ import annotations

import streamlit as st

from tracker.alerts import acknowledge, counts, recent
from tracker.claimreview import web_url
from tracker.dashboard.common import act, engine, open_claim, show_flash, who
from tracker.feeds import appearances
from tracker.models import Alert
from tracker.review import status_words

SHOWN = 100


def repeats() -> None:
    show_flash()
    st.header("Repeats")
    db = engine()
    numbers = counts(db)
    st.caption(
        "Claims the desk has checked, or others have fact-checked, said again in articles "
        "from the followed feeds (tracker watch). Newest first."
    )
    every = st.toggle("Show acknowledged alerts too", key="repeats_all")
    total, waiting = numbers["alerts"], numbers["unacknowledged"]
    st.text(f"{total} alert{'' if total == 1 else 's'}, {waiting} not acknowledged")
    found = recent(db, unacknowledged=not every, limit=SHOWN)
    if not found:
        st.text("Nothing to acknowledge." if numbers["alerts"] else "No repeated claims yet.")
        return
    if len(found) == SHOWN:
        st.caption(f"The newest {SHOWN}: acknowledge these to see older ones.")
    me = who()
    for alert in found:
        _alert(alert, me)


def _verdict(alert: Alert) -> str:
    if alert.kind == "fact_check":
        return f"a fact-check by {alert.matched_source or 'someone'}, rated {alert.verdict}"
    status, _, rating = alert.verdict.partition(" ")  # "disputed (rated Misleading)"
    return f"claim {alert.matched_claim_id}, marked {status_words(status)} {rating}".rstrip()


def _alert(alert: Alert, me) -> None:
    with st.container(border=True):
        when = f"{alert.created_at:%Y-%m-%d %H:%M} UTC"
        left, right = st.columns([5, 1])
        left.text(
            f"Alert {alert.id} · {when} · similarity {alert.score:.2f} ({alert.how})"
            + (f" · careful: {alert.caution}" if alert.caution else "")
        )
        left.text(f"New claim: {alert.claim_text}")
        where = alert.article_title or "untitled"
        if alert.outlet:
            where += f" ({alert.outlet})"
        left.text(f"In: {where}\n{alert.article_url or ''}".rstrip())
        if alert.article_id is not None:
            others = appearances(engine(), alert.article_id)[1:]
            if others:
                left.text(
                    "Also ran in: " + "; ".join(f"{a.outlet or ''} {a.url}".strip() for a in others)
                )
        left.text(f"Matches {_verdict(alert)}:\n{alert.matched_text}")
        if alert.claim_id is not None and right.button(
            "Open the claim", key=f"open_alert_{alert.id}", width="stretch"
        ):
            open_claim(alert.claim_id)
        if (
            alert.kind == "claim"
            and alert.matched_claim_id is not None
            and right.button(
                "Open the checked claim", key=f"open_matched_{alert.id}", width="stretch"
            )
        ):
            open_claim(alert.matched_claim_id)
        if alert.kind == "fact_check" and (link := web_url(alert.matched_url)):
            right.link_button("Read the fact-check", link, width="stretch")
        if alert.acknowledged_at is not None:
            right.text(
                f"Acknowledged by {alert.acknowledged_by}\n"
                f"{alert.acknowledged_at:%Y-%m-%d %H:%M} UTC"
            )
        elif right.button(
            "Acknowledge",
            key=f"ack_{alert.id}",
            disabled=not me.can_edit,
            help=None if me.can_edit else "Needs the reviewer role and your name in the sidebar.",
            width="stretch",
        ) and act(acknowledge, engine(), alert.id, actor=me.name or ""):
            st.session_state["flash"] = f"Alert {alert.id} acknowledged."
            st.rerun()
