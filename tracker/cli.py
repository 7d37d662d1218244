"""The `tracker` command: import articles, export claims, show the setup."""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlmodel import Session, func, select

from tracker.config import NO_MODEL_MESSAGE, get_settings
from tracker.db import get_engine
from tracker.export import FORMATS, ExportFilter, export
from tracker.ingest import import_article
from tracker.llm import ModelClient
from tracker.models import CLAIM_STATUSES, Article, Claim
from tracker.prompts import load_prompts
from tracker.readers import ReadError, read_articles

app = typer.Typer(
    help="Find, review and export the check-worthy claims in news articles.",
    no_args_is_help=True,
    add_completion=False,
)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _db_label(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@app.command("import")
def import_(
    paths: Annotated[list[str], typer.Argument(help="Files, folders, or - for standard input.")],
    title: Annotated[str | None, typer.Option(help="Title (one input only).")] = None,
    url: Annotated[str | None, typer.Option(help="Article URL (one input only).")] = None,
    outlet: Annotated[str | None, typer.Option(help="Outlet of every article.")] = None,
    author: Annotated[str | None, typer.Option(help="Author of every article.")] = None,
    published: Annotated[
        datetime | None, typer.Option(help="Publication date of every article.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Extract again even if done before.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
) -> None:
    """Store articles and extract their check-worthy claims with the configured model."""
    settings = get_settings()
    if not settings.model_configured:
        _err(NO_MODEL_MESSAGE)
        raise typer.Exit(2)
    single = len(paths) == 1 and (paths[0] == "-" or Path(paths[0]).is_file())
    if (title or url) and not single:
        raise typer.BadParameter("--title and --url describe one article: give one file or -")
    engine = get_engine(settings.database_url)
    client = ModelClient(settings)
    counts = {"extracted": 0, "failed": 0, "skipped": 0}
    claims = 0
    for item in read_articles(paths, title):
        if isinstance(item, ReadError):
            counts["failed"] += 1
            _err(f"  ✗ {item.source}: {item.reason}")
            continue
        item = item.model_copy(
            update={
                k: v
                for k, v in {
                    "url": url,
                    "outlet": outlet,
                    "author": author,
                    "published_at": published,
                }.items()
                if v is not None
            }
        )
        outcome = import_article(engine, item, settings, client, force=force)
        counts[outcome.state] += 1
        claims += outcome.claims
        name = outcome.title or item.source_path or f"article {outcome.article_id}"
        if outcome.state == "failed":
            _err(f"  ✗ {name}: {outcome.error}")
            if outcome.fatal:
                _err("Stopped: this error would fail every other article the same way.")
                break
        elif not quiet:
            detail = f"{outcome.claims} claims"
            if outcome.state == "skipped":
                detail = "already extracted"
            elif outcome.dropped:
                detail += f" ({outcome.dropped} not found in the text, dropped)"
            _err(f"  ✓ {name}: {detail}")
    total = sum(counts.values())
    _err(
        f"{total} article(s): {counts['extracted']} extracted, {counts['failed']} failed, "
        f"{counts['skipped']} skipped; {claims} claims stored in {_db_label(settings.database_url)}"
    )
    if counts["failed"]:
        raise typer.Exit(1)


@app.command("export")
def export_(
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
    status: Annotated[list[str] | None, typer.Option(help="Only claims with this status.")] = None,
    outlet: Annotated[str | None, typer.Option(help="Only claims from this outlet.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only claims changed since.")] = None,
) -> None:
    """Write the claims, with their sources, as JSON Lines or CSV."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    for value in status or []:
        if value not in CLAIM_STATUSES:
            raise typer.BadParameter(
                f"{value!r} is not a status; use {', '.join(CLAIM_STATUSES)}", param_hint="--status"
            )
    engine = get_engine(get_settings().database_url)
    where = ExportFilter(statuses=status, outlet=outlet, since=since)
    if output is None:
        export(engine, fmt, sys.stdout, where)
        return
    # Write beside the target, then rename: a failed export never leaves half a file.
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = export(engine, fmt, out, where)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _err(f"{count} claims written to {output}")


@app.command()
def info() -> None:
    """Show the configuration in use (never secrets) and what the database holds."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    with Session(engine) as session:
        articles = session.exec(select(func.count()).select_from(Article)).one()
        claims = session.exec(select(func.count()).select_from(Claim)).one()
    typer.echo(f"database:     {_db_label(settings.database_url)}")
    typer.echo(f"model:        {settings.model}")
    typer.echo(f"model server: {settings.safe_base_url}")
    typer.echo(f"api key:      {'set' if settings.openai_api_key else 'not set'}")
    typer.echo(f"prompt hash:  {load_prompts().hash[:12]}")
    typer.echo(f"articles:     {articles}")
    typer.echo(f"claims:       {claims}")


if __name__ == "__main__":
    app()
