"""Overview of the claims the queue's filter selects: where they stand, how the desk's
work goes day by day (reviews given, backlog left), where they come from, and the most
check-worthy ones still waiting (click one to open it)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from tracker.dashboard.common import (
    STATUS_COLOURS,
    current_filter,
    describe,
    engine,
    open_claim,
)
from tracker.models import Article, Claim
from tracker.queue import page_rows, status_counts
from tracker.review import status_words
from tracker.stats import backlog, breakdown, reviews_per_day

_STATUS_SCALE = alt.Scale(
    domain=[status_words(s) for s in STATUS_COLOURS], range=list(STATUS_COLOURS.values())
)


def _on_pick() -> None:
    selection = st.session_state["overview_top"]["selection"]
    rows = selection.get("rows") or [cell[0] for cell in selection.get("cells") or []]
    ids = st.session_state.get("overview_ids", [])
    if rows and rows[0] < len(ids):
        st.session_state["open_claim"] = ids[rows[0]]


def overview() -> None:
    wanted = st.session_state.pop("open_claim", None)
    if wanted is not None:
        open_claim(wanted)
    st.header("Overview")
    db = engine()
    flt = current_filter()
    st.text(f"Claims selected by the queue filter: {describe(flt)}.")  # as text: it holds input
    counts = status_counts(db, flt)
    if not sum(counts.values()):
        st.text("No claims match this filter.")
        return

    left, right = st.columns(2)
    with left:
        st.subheader("Where the claims stand")
        frame = pd.DataFrame([{"status": status_words(s), "claims": n} for s, n in counts.items()])
        st.altair_chart(_bars(frame, "status", colour=True), width="stretch")
    with right:
        st.subheader("Waiting for a verdict, day by day")
        series = backlog(db, flt)
        if series:
            frame = pd.DataFrame(series, columns=["day", "waiting"])
            frame["day"] = pd.to_datetime(frame["day"])
            chart = (
                alt.Chart(frame)
                .mark_area(line=True, point=True, opacity=0.3, interpolate="step-after")
                .encode(
                    x=alt.X(
                        "yearmonthdate(day):T",
                        title=None,
                        axis=alt.Axis(format="%b %d", tickCount="day"),
                    ),
                    y=alt.Y(
                        "waiting:Q",
                        title="claims waiting",
                        axis=alt.Axis(tickMinStep=1, format="d"),
                    ),
                    tooltip=[alt.Tooltip("yearmonthdate(day):T", title="day"), "waiting:Q"],
                )
            )
            st.altair_chart(chart, width="stretch")

    st.subheader("Verdicts given per day")
    reviews = reviews_per_day(db, flt)
    if reviews:
        frame = pd.DataFrame(reviews, columns=["day", "status", "reviews"])
        frame["day"] = frame["day"].map(lambda d: d.isoformat())
        frame["status"] = frame["status"].map(status_words)
        chart = (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("day:O", title=None),
                y=alt.Y("sum(reviews):Q", title="status changes", axis=alt.Axis(tickMinStep=1)),
                color=alt.Color("status:N", scale=_STATUS_SCALE, title="status given"),
                tooltip=["day:O", "status:N", "sum(reviews):Q"],
            )
        )
        st.altair_chart(chart, width="stretch")
    else:
        st.text("No verdicts yet.")

    left, right = st.columns(2)
    for column, title, field in ((left, "By outlet", Article.outlet),
                                 (right, "By claimant", Claim.claimant)):  # fmt: skip
        with column:
            st.subheader(title)
            frame = pd.DataFrame(breakdown(db, flt, field), columns=["name", "claims"])
            st.altair_chart(_bars(frame, "name"), width="stretch")

    st.subheader("Most check-worthy, still unreviewed")
    st.caption("Click a row to open the claim.")
    rows = page_rows(db, _unreviewed(flt), page_size=10)
    st.session_state["overview_ids"] = [r.claim.id for r in rows]
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r.claim.id,
                    "score": round(r.claim.checkworthiness, 2),
                    "claim": r.claim.text,
                    "claimant": r.claim.claimant or "",
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
        on_select=_on_pick,
        selection_mode=["single-row", "single-cell"],
        key="overview_top",
    )


def _unreviewed(flt):
    from dataclasses import replace

    return replace(flt, statuses=("unreviewed",))


def _bars(frame: pd.DataFrame, field: str, *, colour: bool = False) -> alt.Chart:
    """Horizontal bars, longest first."""
    encoding = {
        "x": alt.X("claims:Q", title="claims", axis=alt.Axis(tickMinStep=1, format="d")),
        "y": alt.Y(f"{field}:N", sort="-x", title=None),
        "tooltip": [f"{field}:N", "claims:Q"],
    }
    if colour:
        encoding["color"] = alt.Color(f"{field}:N", scale=_STATUS_SCALE, legend=None)
    return alt.Chart(frame).mark_bar().encode(**encoding)
