"""Export the claims the queue's filter selects, with their review, as CSV, JSONL or
schema.org ClaimReview. Files are built when a button is pressed, not on every render:
the page itself only counts."""

from __future__ import annotations

import io

import streamlit as st

from tracker.claimreview import ClaimReviewError, write_claimreview
from tracker.dashboard.common import current_filter, describe, engine, settings
from tracker.export import ExportFilter, export
from tracker.queue import count

LARGE = 200_000  # above this, the CLI streams to a file; the browser download holds it in memory


def _builder(fmt: str, where: ExportFilter):
    """The file's contents, made when the download button is pressed."""

    def build() -> bytes:
        buffer = io.StringIO()
        export(engine(), fmt, buffer, where)
        return buffer.getvalue().encode("utf-8")

    return build


def exporter() -> None:
    st.header("Export")
    flt = current_filter()
    where = ExportFilter(queue=flt)
    matching = count(engine(), flt)
    st.text(f"{matching} claims selected by the queue filter: {describe(flt)}.")
    st.caption(
        "Each claim carries its review: status, rating, verdict note, reviewer, reviewed at, "
        "assignee, dismissed, and its sources. Change the filter in the sidebar."
    )
    if matching > LARGE:
        st.info(
            f"For {matching} claims, `tracker export` writes the file without holding it in "
            "memory: tracker export --format csv -o claims.csv (with the same filters)."
        )
    columns = st.columns(2)
    for column, (fmt, mime) in zip(
        columns, (("csv", "text/csv"), ("jsonl", "application/jsonl")), strict=True
    ):
        column.download_button(
            f"Download {matching} claims as {fmt.upper()}",
            _builder(fmt, where),
            file_name=f"claims.{fmt}",
            mime=mime,
            disabled=matching == 0,
            on_click="ignore",
        )

    st.subheader("ClaimReview (schema.org)")
    st.caption(
        "The reviewed claims (checked, disputed, inconclusive) in this filter, as "
        "JSON-LD for publishing."
    )
    if st.button("Prepare ClaimReview"):
        buffer = io.StringIO()
        try:
            published = write_claimreview(engine(), settings(), buffer, where)
        except ClaimReviewError as refused:
            st.text(str(refused))
        else:
            st.download_button(
                f"Download {published} ClaimReviews (JSON-LD)",
                buffer.getvalue(),
                file_name="claimreview.json",
                mime="application/ld+json",
                on_click="ignore",
            )
