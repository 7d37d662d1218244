"""Progress of an import on stderr: a live bar on a terminal, one line per article in a log."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tracker.batch import ItemReport
from tracker.sanitize import one_line, printable

SYMBOL = {
    "extracted": "✓", "skipped": "↷", "duplicate": "↷", "busy": "↷", "failed": "✗", "invalid": "✗",
}  # fmt: skip


class ImportProgress:
    def __init__(
        self, total: int | None, *, quiet: bool = False, shown: Callable[[str], str] = printable
    ) -> None:
        """`shown`: what may be printed of a line (no secret, no terminal control)."""
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.shown = shown
        self.counts = {"extracted": 0, "failed": 0, "skipped": 0}
        self.claims = 0
        self.tokens = 0
        self.done = 0
        self.live = not quiet and self.console.is_terminal
        self.bar = Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.task = self.bar.add_task("import", total=total, status="")

    def __enter__(self) -> ImportProgress:
        self.bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.stop()

    def update(self, item: ItemReport) -> None:
        self.done += 1
        bucket = {"invalid": "failed", "duplicate": "skipped", "busy": "skipped"}.get(
            item.state, item.state
        )
        self.counts[bucket] += 1
        self.claims += item.claims
        self.tokens += item.prompt_tokens + item.completion_tokens
        status = (
            f"✓ {self.counts['extracted']} ✗ {self.counts['failed']} ↷ {self.counts['skipped']}"
            f" · {self.claims} claims · {self.tokens:,} tokens"
        )
        self.bar.update(self.task, advance=1, status=status)
        if not self.quiet and not self.live:
            line = self.shown(f"  {SYMBOL[item.state]} {self._describe(item)}")
            print(line, file=sys.stderr, flush=True)

    @staticmethod
    def _describe(item: ItemReport) -> str:
        """One line (a title or a reason with newlines in it stays on its line)."""
        name = one_line(item.title or item.source)
        source, error = one_line(item.source), one_line(item.error or "")
        if item.state == "extracted":
            dropped = (
                f" ({item.dropped} dropped: quote not in the text, or claim not supported by "
                "it; --json says which)"
                if item.dropped
                else ""
            )
            return f"{name}: {item.claims} claims{dropped}"
        if item.state == "skipped":
            why = "failed before (--retry-failed to retry)" if item.error else "already extracted"
            return f"{name}: {why}"
        if item.state == "duplicate":
            return f"{source}: same text as an earlier input"
        if item.state == "busy":
            return f"{name}: being extracted by another import (skipped)"
        return f"{source}: {error}"
