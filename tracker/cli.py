"""The `tracker` command: import articles, export claims, review, show the setup.

Each command imports what it uses when it runs, so `tracker --help` and quick commands
do not pay for the database layer, the HTTP client or the offline model.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # commands import what they use when they run: `tracker --help` stays quick
    from collections.abc import Iterable, Iterator

    from sqlalchemy.engine import Engine

    from tracker.batch import BatchReport, Plan
    from tracker.config import Settings
    from tracker.models import Claim
    from tracker.readers import Item


def get_settings() -> Settings:
    """The configuration (environment, .env); a seam tests replace. Commands ask for it
    once their modules are loaded, which is when the garbage collector resumes."""
    from tracker.config import get_settings as configured

    _loaded()
    return configured()


def _loaded() -> None:
    """A command's modules are loaded: resume the garbage collector main() paused while
    they loaded (they make ~170,000 objects and no garbage; collecting as they came cost a
    tenth of a second of start-up), with what they made frozen out of its sight, so that
    no later collection walks it again. Every command gets here before its work: through
    get_settings, _open_database, or a call of its own (score, eval)."""
    if not gc.isenabled():  # (in-process callers, tests among them, never paused it)
        gc.freeze()
        gc.enable()


app = typer.Typer(
    help="Find, review and export the check-worthy claims in news articles.",
    no_args_is_help=True,
    add_completion=False,
)


def _shown(text: str) -> str:
    """What may be printed of `text`: no secret (`scrub`, the same function every stored
    text goes through) and nothing a terminal would act on (an article's title can hold
    escape sequences)."""
    from tracker.sanitize import printable, scrub

    try:
        secrets = get_settings().secrets()
    except Exception:  # settings that do not validate: nothing configured to hide
        secrets = []
    return printable(scrub(text, secrets))


def _err(message: str) -> None:
    typer.echo(_shown(message), err=True)


def _line(text: object) -> str:
    """A value printed inside a line (a title, a name, a reason): on that one line."""
    from tracker.sanitize import one_line

    return one_line(str(text))


def _extracted_since(engine: Engine, started: datetime) -> int:
    """Articles whose extraction was stored since `started` (the writer thread may have
    committed some the progress display had not counted yet)."""
    from sqlmodel import Session, func, select

    from tracker.models import Article

    with Session(engine) as session:
        query = select(func.count()).select_from(Article).where(Article.extracted_at >= started)
        return session.exec(query).one()


def _db_label(url: str) -> str:
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(not a database URL)"


def _open_database(url: str) -> Engine:
    """The migrated engine, or a one-line reason and exit 2 (a typo in the URL, a server
    that is down, a file that is not a database), never a traceback."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    from tracker.db import get_engine
    from tracker.sanitize import scrub

    _loaded()
    try:
        engine = get_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (sa_exc.ArgumentError, sa_exc.DBAPIError, sa_exc.NoSuchModuleError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        try:
            password = make_url(url).password
        except sa_exc.ArgumentError:
            password = None
        _err(
            f"Cannot use the database {_db_label(url)}: "
            f"{scrub(reason, [str(password)] if password else [])}\n"
            "Check TRACKER_DATABASE_URL (or the .env file it may come from)."
        )
        raise typer.Exit(2) from None
    return engine


def _with_metadata(items: Iterable[Item], overrides: dict[str, Any]) -> Iterator[Item]:
    from tracker.models import ArticleCreate

    values = {k: v for k, v in overrides.items() if v is not None}
    for item in items:
        yield item.model_copy(update=values) if values and isinstance(item, ArticleCreate) else item


@app.command("import")
def import_(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Files, folders, glob patterns, or - for standard input."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title (one input only).")] = None,
    url: Annotated[str | None, typer.Option(help="Article URL (one input only).")] = None,
    outlet: Annotated[str | None, typer.Option(help="Outlet of every article.")] = None,
    author: Annotated[str | None, typer.Option(help="Author of every article.")] = None,
    published: Annotated[
        datetime | None, typer.Option(help="Publication date of every article.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, max=256, help="Requests at once.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Extract again even if done before.")] = False,
    retry_failed: Annotated[
        bool, typer.Option(help="Retry articles that failed or were interrupted before.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Read, check and estimate tokens; no model call, no write.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and summary.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout.")
    ] = False,
    stdin_format: Annotated[
        str, typer.Option(help="Format of standard input: txt, md, html, json, jsonl.")
    ] = "txt",
    extractor: Annotated[
        str | None,
        typer.Option(help="llm, offline, or auto (the model when configured, else offline)."),
    ] = None,
    prefilter: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Send only paragraphs the offline model scores this high."),
    ] = None,
    enqueue: Annotated[
        bool,
        typer.Option(help="Only store the articles as pending, for `tracker worker` to extract."),
    ] = False,
    batch_api: Annotated[
        bool,
        typer.Option(
            "--batch-api",
            help="Send the articles through OpenAI's Batch API (half price, answered within "
            "24 h) and wait; resumable with `tracker batches --resume`.",
        ),
    ] = False,
) -> None:
    """Store articles and extract their check-worthy claims with the configured model
    (or, with --enqueue, store them for workers and return at once).

    Exit status: 0 when every article was extracted (or done before), 1 when any failed,
    2 for a usage or configuration error.
    """
    import asyncio
    import contextlib
    import itertools

    from sqlalchemy import exc as sa_exc

    from tracker import lease
    from tracker.batch import MATCHER_AFTER, plan_batch, run_batch, unfinished_articles
    from tracker.config import NO_MODEL_MESSAGE
    from tracker.db import StorageError, refresh_statistics, storage_problem
    from tracker.progress import ImportProgress
    from tracker.readers import FORMATS, count_inputs, is_regular_file, read_articles

    settings = get_settings()
    if extractor not in (None, "auto", "llm", "offline"):
        raise typer.BadParameter("use llm, offline or auto", param_hint="--extractor")
    updates = {"extractor": extractor, "prefilter": prefilter}
    settings = settings.model_copy(update={k: v for k, v in updates.items() if v is not None})
    paths = paths or []
    if not paths and not retry_failed:
        raise typer.BadParameter("give files or folders to import (or use --retry-failed)")
    if stdin_format not in set(FORMATS.values()):
        raise typer.BadParameter(f"use one of {', '.join(sorted(set(FORMATS.values())))}")
    single = len(paths) == 1 and (paths[0] == "-" or is_regular_file(paths[0]))
    many = not single or (
        stdin_format if paths[0] == "-" else FORMATS.get(Path(paths[0]).suffix.lower())
    ) in ("json", "jsonl")
    if (title or url) and many:
        raise typer.BadParameter(
            "--title and --url describe one article: give one text, Markdown or HTML file, or "
            "- (JSON inputs carry their own titles and URLs)"
        )
    if settings.extractor == "llm" and not settings.model_configured and not dry_run:
        _err(NO_MODEL_MESSAGE)
        raise typer.Exit(2)
    if settings.uses_offline and not quiet:
        _err(
            "Using the offline extractor (no language model configured, or --extractor "
            "offline): each check-worthy sentence becomes a claim. See README: Configuration."
        )
    if settings.uses_offline and prefilter is not None:
        _err(
            "--prefilter is ignored: it saves model tokens, and the offline extractor sends "
            "nothing (it already keeps only check-worthy sentences)."
        )
    engine = _open_database(settings.database_url)
    overrides = {
        "title": title, "url": url, "outlet": outlet, "author": author, "published_at": published,
    }  # fmt: skip
    items = _with_metadata(
        read_articles(paths, max_bytes=settings.max_article_bytes, stdin_format=stdin_format),
        overrides,
    )
    stored = unfinished_articles(engine) if retry_failed else []
    if enqueue and not dry_run:
        _enqueue(engine, items, stored, force=force, retry_failed=retry_failed, quiet=quiet,
                 as_json=as_json)  # fmt: skip
    if batch_api and not dry_run:
        if enqueue:
            raise typer.BadParameter("--batch-api and --enqueue are two different ways: pick one")
        if settings.uses_offline:
            _err("--batch-api needs a language model (the offline extractor sends nothing).")
            raise typer.Exit(2)
        _run_batch_api(
            engine, settings, itertools.chain(items, stored), concurrency=concurrency,
            force=force, retry_failed=retry_failed, quiet=quiet, as_json=as_json,
        )  # fmt: skip
    if dry_run:
        plan = plan_batch(
            engine, itertools.chain(items, stored), settings, force=force,
            retry_failed=retry_failed, batch_api=batch_api,
        )  # fmt: skip
        _print_plan(plan, as_json)
        raise typer.Exit(1 if plan.invalid else 0)
    total = count_inputs(paths) if "-" not in paths else None
    progress = ImportProgress(
        None if total is None else total + len(stored), quiet=quiet, shown=_shown
    )
    owner = lease.new_owner()
    run = run_batch(
        engine,
        itertools.chain(items, stored),
        settings,
        concurrency=concurrency or settings.concurrency,
        force=force,
        retry_failed=retry_failed,
        on_item=progress.update,
        owner=owner,
        # A large import's matcher loads its modules on the second core while the first
        # requests are out, instead of beside the busy import later.
        match_early=(total or 0) + len(stored) >= MATCHER_AFTER,
    )
    started = datetime.now(UTC)
    try:
        with progress:
            report = asyncio.run(run)
    except StorageError as refused:  # checked before any model call
        _err(
            f"Cannot write to the database {_db_label(settings.database_url)}: {refused}\n"
            "Nothing was sent to the model. Check the file's permissions, the free disk "
            "space, or TRACKER_DATABASE_URL."
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            lease.release_all(engine, owner)
        stored = _extracted_since(engine, started)
        _err(
            f"\nInterrupted: {stored} article(s) extracted and stored in this run; articles "
            "in flight were not. Run the same command again to finish the rest."
        )
        raise typer.Exit(130) from None
    if report.count("extracted") and not report.stopped:
        try:
            refresh_statistics(engine)
        except sa_exc.SQLAlchemyError as exc:  # the claims are stored; only a speed-up failed
            _err(f"Could not refresh the query planner's statistics: {storage_problem(exc)[0]}")
    _print_report(report, settings, as_json)
    # A stop is a configuration fault (key, model, server): 2, as the README says.
    raise typer.Exit(2 if report.stopped else 1 if report.failures else 0)


def _enqueue(engine: Engine, items, stored: list[int], *, force: bool, retry_failed: bool,
             quiet: bool, as_json: bool) -> None:  # fmt: skip
    """`tracker import --enqueue`: store, queue, report, exit (no model call)."""
    from tracker.workqueue import _requeue, enqueue

    for article_id in stored:  # --retry-failed: the failed ones go back in the queue
        _requeue(engine, article_id)

    def said(source: str, what: str) -> None:
        if not quiet:
            _err(_shown(f"  {source}: {what}"))

    report = enqueue(engine, items, force=force, retry_failed=retry_failed, on_item=said)
    queued = len(report.queued) + len(stored)
    _err(
        f"{queued} article(s) queued, {len(report.already)} done before, "
        f"{len(report.invalid)} unreadable, {report.duplicates} repeated. "
        "Workers extract them: tracker worker"
    )
    if as_json:
        typer.echo(json.dumps({
            "queued": [{"article_id": i, "source": _shown(s)} for i, s in report.queued]
            + [{"article_id": i, "source": f"article {i}"} for i in stored],
            "already": [{"article_id": i, "source": _shown(s), "state": st}
                        for i, s, st in report.already],
            "invalid": [{"source": _shown(e.source), "reason": e.reason} for e in report.invalid],
        }, indent=2))  # fmt: skip
    raise typer.Exit(1 if report.invalid else 0)


def _run_batch_api(
    engine: Engine,
    settings: Settings,
    items: Iterable[Item | int] | None,
    *,
    concurrency: int | None,
    force: bool = False,
    retry_failed: bool = False,
    quiet: bool = False,
    as_json: bool = False,
    resume: int | None = None,
    cancel: int | None = None,
) -> None:
    """`tracker import --batch-api` (items), `tracker batches --resume` (no items) and
    `--cancel`: run, report, exit. Interrupted, the batch goes on at the server."""
    import asyncio

    import openai

    from tracker.apibatch import BatchApiError, BatchApiRun, open_batches
    from tracker.progress import ImportProgress

    progress = ImportProgress(None, quiet=quiet, shown=_shown)
    run = BatchApiRun(
        engine, settings, concurrency=concurrency, on_item=progress.update,
        on_status=None if quiet else _err,
    )  # fmt: skip

    async def main():
        try:
            if items is not None:
                return await run.import_items(items, force=force, retry_failed=retry_failed)
            if cancel is not None:
                if not await run.cancel(cancel):
                    _err(f"Batch {cancel}: nothing to cancel (unknown, or collected already).")
            else:
                for batch_id in [resume] if resume is not None else open_batches(engine):
                    if not await run.resume(batch_id) and resume is not None:
                        _err(f"Batch {batch_id}: nothing to collect (unknown, collected "
                             "already, or another run is collecting it).")  # fmt: skip
            return run.report
        finally:
            await run.close()

    try:
        with progress:
            report = asyncio.run(main())
    except BatchApiError as refused:
        _err(f"The Batch API step failed: {refused}\nIts articles are pending; nothing was lost.")
        raise typer.Exit(2) from None
    except openai.APIError as exc:  # the server unreachable, or failing, while a batch runs
        from tracker.apibatch import _api_message
        from tracker.sanitize import scrub

        reason = scrub(_api_message(exc), settings.secrets())
        _err(
            f"The Batch API server failed: {_line(reason)}\nA batch already submitted keeps "
            "running at the server; collect it with `tracker batches --resume`."
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        _err(
            "\nInterrupted. A batch already submitted keeps running at the server; collect "
            "its results with `tracker batches --resume` (or run the same import again)."
        )
        raise typer.Exit(130) from None
    _print_report(report, settings, as_json)
    raise typer.Exit(2 if report.stopped else 1 if report.failures else 0)


@app.command()
def batches(
    batch_id: Annotated[
        int | None, typer.Argument(help="Pick up this stored batch (wait for it, collect it).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Pick up every batch not collected yet.")] = False,
    cancel: Annotated[
        int | None, typer.Option(help="Cancel this batch, then collect what it answered.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, max=256, help="Re-asks at once.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """The Batch API's batches (`tracker import --batch-api`): list them with their status
    and counts; with --resume or an ID, wait for running ones and collect finished ones."""
    settings = get_settings()
    engine = _open_database(settings.database_url)
    if resume or batch_id is not None or cancel is not None:
        if not settings.model_configured:
            from tracker.config import NO_MODEL_MESSAGE

            _err(NO_MODEL_MESSAGE)
            raise typer.Exit(2)
        _run_batch_api(engine, settings, None, concurrency=concurrency, quiet=quiet,
                       as_json=as_json, resume=batch_id, cancel=cancel)  # fmt: skip
    from tracker.apibatch import list_batches

    rows = list_batches(engine)
    if as_json:
        typer.echo(_shown(json.dumps([
            {**vars(r), "created_at": r.created_at.isoformat(),
             "collected_at": r.collected_at and r.collected_at.isoformat()}
            for r in rows
        ], indent=2)))  # fmt: skip
        return
    if not rows:
        _err("No Batch API batches stored (tracker import --batch-api sends one).")
        return
    for r in rows:
        state = "collected" if r.collected_at else "to collect" if r.status != "abandoned" else ""
        line = (
            f"{r.id:>4}  {r.provider_id or '-':<28} {r.status:<11} {r.articles} article(s), "
            f"{r.requests_completed}/{r.requests_total} answered, {r.requests_failed} failed  "
            f"{r.created_at:%Y-%m-%d %H:%M}  {state}"
        )
        typer.echo(_shown(line + (f"  ({_line(r.error)})" if r.error else "")))
    if any(not r.collected_at and r.status != "abandoned" for r in rows):
        _err("Collect the open ones: tracker batches --resume")


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, max=256, help="Requests at once.")
    ] = None,
    until_empty: Annotated[
        bool, typer.Option(help="Exit when no article is pending (scripts, cron, tests).")
    ] = False,
    poll: Annotated[
        float, typer.Option(min=0.1, help="Seconds between looks at an empty queue.")
    ] = 2.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and summary.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout at the end.")
    ] = False,
) -> None:
    """Extract the articles waiting in the queue (`tracker import --enqueue`, the
    dashboard), until stopped. Run as many as the model's rate limit allows, on any
    machines sharing one PostgreSQL database; on SQLite, one at a time.

    SIGTERM or Ctrl-C: finish the articles in flight and stop (a second one stops at once,
    giving the unfinished articles back to the queue)."""
    import asyncio
    import signal
    import threading

    from tracker.db import StorageError
    from tracker.progress import ImportProgress
    from tracker.workqueue import WorkerBusy, work

    settings = get_settings()
    engine = _open_database(settings.database_url)
    stop = threading.Event()
    progress = ImportProgress(None, quiet=quiet, shown=_shown)

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def halt() -> None:
            if stop.is_set():
                task.cancel()  # a second signal: stop now
                return
            stop.set()
            _err("Stopping: finishing the articles in flight (again to stop at once).")

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, halt)
        return await work(
            engine, settings, concurrency=concurrency or settings.concurrency,
            until_empty=until_empty, stop=stop, on_item=progress.update, poll=poll,
        )  # fmt: skip

    if not quiet:
        _err(f"Worker on {_db_label(settings.database_url)}; waiting for articles ...")
    try:
        with progress:
            report = asyncio.run(main())
    except WorkerBusy as busy:
        _err(f"Not started: {busy}.")
        raise typer.Exit(2) from None
    except StorageError as refused:
        _err(f"Cannot write to the database {_db_label(settings.database_url)}: {refused}")
        raise typer.Exit(2) from None
    except asyncio.CancelledError:
        _err("Stopped; the articles in flight went back to the queue.")
        raise typer.Exit(130) from None
    _print_report(report, settings, as_json)
    raise typer.Exit(2 if report.stopped else 1 if report.failures else 0)


def _print_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(plan.summary(), indent=2))
        return
    for error in plan.invalid:
        _err(f"  ✗ {_line(error.source)}: {_line(error.reason)}")
    cost = f", about ${plan.cost_usd:.4f}" if plan.cost_usd is not None else ""
    if cost and plan.batch_api:
        cost += " at the Batch API's price"
    _err(
        f"Dry run: {plan.articles} article(s) read, {len(plan.invalid)} unreadable; "
        f"{plan.new} to extract, {plan.already_extracted} already extracted, "
        f"{plan.previously_failed} failed before (--retry-failed), {plan.duplicates} duplicate.\n"
        f"Estimate: {plan.chunks} request(s), about {plan.prompt_tokens:,} input and "
        f"{plan.completion_tokens:,} output tokens{cost}. Nothing was sent or stored."
    )


def _print_report(report: BatchReport, settings: Settings, as_json: bool) -> None:
    summary = report.summary(settings)
    if summary["warnings"]:
        _err(f"Warnings ({len(summary['warnings'])}):")
        for warning in summary["warnings"]:
            _err(f"  ! {_line(warning['source'])}: {_line(warning['warning'])}")
    if report.failures:
        _err(f"Failed ({len(report.failures)}):")
        for item in report.failures:
            _err(f"  ✗ {_line(item.source)}: {_line(item.error)}")
    if report.stopped:
        _err(
            f"Stopped early: {_line(report.stopped)}\n"
            "This error would fail every article the same way."
        )
    if busy := report.count("busy"):
        _err(f"{busy} article(s) were being extracted by another import at the same time.")
    cost = f", ${summary['cost_usd']:.4f}" if summary["cost_usd"] is not None else ""
    _err(
        f"{summary['articles']} article(s): {summary['extracted']} extracted, "
        f"{summary['failed']} failed, {summary['skipped']} skipped; {summary['claims']} claims; "
        f"{summary['prompt_tokens'] + summary['completion_tokens']:,} tokens{cost}; "
        f"{summary['seconds']:.1f} s. Database: {_db_label(settings.database_url)}"
    )
    if as_json:
        typer.echo(_shown(json.dumps(summary, indent=2)))


@app.command("export")
def export_(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="jsonl, csv or claimreview.")
    ] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
    status: Annotated[list[str] | None, typer.Option(help="Only claims with this status.")] = None,
    outlet: Annotated[str | None, typer.Option(help="Only claims from this outlet.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only claims changed since.")] = None,
) -> None:
    """Write the claims, with their sources, as JSON Lines or CSV; or the reviewed ones as
    schema.org ClaimReview JSON-LD."""
    from tracker.claimreview import ClaimReviewError, write_claimreview
    from tracker.export import FORMATS as EXPORT_FORMATS
    from tracker.export import ExportFilter, export
    from tracker.vocabulary import CLAIM_STATUSES

    formats = (*EXPORT_FORMATS, "claimreview")
    if fmt not in formats:
        raise typer.BadParameter(f"use one of {', '.join(formats)}", param_hint="--format")
    for value in status or []:
        if value not in CLAIM_STATUSES:
            raise typer.BadParameter(
                f"{value!r} is not a status; use {', '.join(CLAIM_STATUSES)}", param_hint="--status"
            )
    settings = get_settings()
    engine = _open_database(settings.database_url)
    where = ExportFilter(statuses=status, outlet=outlet, since=since)

    def write(out) -> int:
        if fmt == "claimreview":
            return write_claimreview(engine, settings, out, where)
        return export(engine, fmt, out, where)

    try:
        if output is None:
            write(_Printable(sys.stdout) if sys.stdout.isatty() else sys.stdout)
            return
        count = _write_atomically(output, write)
    except ClaimReviewError as refused:
        _err(str(refused))
        raise typer.Exit(1) from None
    _err(f"{count} claims written to {output}")


class _Printable:
    """A terminal as a file an export writes to: what it is sent has its escape sequences
    and control characters removed (a CSV cell holds an article's title as it came); a
    pipe or a file gets the export unchanged."""

    def __init__(self, out) -> None:
        self.out = out

    def write(self, text: str) -> int:
        from tracker.sanitize import printable

        self.out.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def _file_mode(path: Path) -> int:
    """The mode an ordinary new file gets here (the umask), or the replaced file's own."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomically(output: Path, write) -> int:
    """Write beside the target, then rename: a failed export never leaves half a file."""
    import tempfile

    if output.is_dir():
        raise typer.BadParameter(f"{output} is a folder; name a file", param_hint="--output")
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = write(out)
        os.chmod(tmp, _file_mode(output))  # mkstemp's 0600 would keep colleagues out
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


@app.command("import-factchecks")
def import_factchecks_(
    files: Annotated[
        list[Path], typer.Argument(help="ClaimReview JSON-LD or JSONL files, or folders of them.")
    ],
) -> None:
    """Load published fact-checks (schema.org ClaimReview); new claims are compared with them."""
    from tracker.claimreview import ImportCounts, import_factchecks, read_factchecks
    from tracker.readers import ReadError

    engine = _open_database(get_settings().database_url)
    totals = ImportCounts()
    for path in files:
        items = list(read_factchecks(path))
        for item in items:
            if isinstance(item, ReadError):
                _err(f"  ✗ {_line(item.source)}: {_line(item.reason)}")
        counts = import_factchecks(engine, items)
        for problem in counts.problems:
            _err(f"  ✗ {path}: the database refused an entry: {problem}")
        totals.added += counts.added
        totals.known += counts.known
        totals.invalid += counts.invalid
        totals.updated += counts.updated
    _err(
        f"{totals.added} fact-checks added, {totals.updated} updated, "
        f"{totals.known} known already, {totals.invalid} invalid"
    )
    if totals.invalid:
        raise typer.Exit(1)


@app.command()
def stats(
    top: Annotated[int, typer.Option(min=1, help="Rows per ranking.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts by status, claim type, outlet and claimant, and extraction failures."""
    from tracker.stats import collect as collect_stats

    settings = get_settings()
    data = collect_stats(_open_database(settings.database_url), settings, top=top)
    if as_json:
        typer.echo(_shown(json.dumps(data, indent=2, default=str)))
        return
    ex = data["extraction"]
    typer.echo(
        f"{data['articles']} articles ({ex['extracted']} extracted, {ex['pending']} pending, "
        f"{ex['failed']} failed), {data['claims']} claims ({data['dismissed']} dismissed), "
        f"{data['tokens']['prompt'] + data['tokens']['completion']:,} tokens used"
    )
    matches = ", ".join(f"{n} {state}" for state, n in sorted(data["matches"].items()))
    typer.echo(
        f"Same claim elsewhere: {matches or 'none found'}; "
        f"{data['fact_checks']} published fact-checks loaded"
    )
    queue = data["queue"]
    typer.echo(
        f"\nExtraction queue: {queue['pending']} pending ({queue['extracting']} being "
        f"extracted), {queue['failed']} failed; {len(queue['workers'])} worker(s) running"
    )
    for found in queue["workers"]:
        typer.echo(_shown(f"  worker {found['owner']} (x{found['concurrency']}) since "
                          f"{found['started_at']:%Y-%m-%d %H:%M:%S}, seen "
                          f"{found['seen_at']:%H:%M:%S}"))  # fmt: skip
    for held in queue["leased"]:
        since = f"{held['since']:%Y-%m-%d %H:%M:%S}" if held["since"] else "?"
        typer.echo(_shown(f"  article {held['article_id']}: {held['owner']}, since {since}"))
    for title, key in [
        ("status", "by_status"),
        ("claim type", "by_claim_type"),
        ("outlet", "by_outlet"),
        ("claimant", "by_claimant"),
    ]:
        typer.echo(f"\nBy {title}:")
        for name, count in data[key].items():
            typer.echo(_shown(f"  {count:>8}  {_line(name)}"))
    from tracker.stats import monitoring_lines

    for line in monitoring_lines(data["monitoring"]):
        typer.echo(_shown(_line(line)))
    if data["failures"]:
        typer.echo(f"\nFailed extractions (first {top}; retry: tracker import --retry-failed):")
        for failure in data["failures"]:
            name = failure["title"] or failure["source"] or f"article {failure['article_id']}"
            typer.echo(_shown(f"  {_line(name)}: {_line(failure['reason'])}"))


@app.command()
def score(
    file: Annotated[
        Path | None, typer.Argument(help="Sentences, one per line (default: standard input).")
    ] = None,
) -> None:
    """Print the check-worthiness (0-1) of each input line, in order, by the offline model."""
    from tracker.offline import load_model
    from tracker.readers import decode

    _loaded()  # (the one command that reads no settings)
    if file is None:
        text = sys.stdin.read()
    else:
        try:
            text = decode(file.read_bytes())  # the encoding detection `import` uses
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise typer.BadParameter(f"{file}: {reason}", param_hint="FILE") from None
    # One score per input line: split on newlines only (str.splitlines also splits on
    # form feeds and Unicode line separators inside a sentence).
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    model = load_model()
    for start in range(0, len(lines), 1000):
        for value in model.checkworthiness(lines[start : start + 1000]):
            typer.echo(f"{value:.4f}")


@app.command("eval")
def eval_(
    data: Annotated[Path, typer.Option(help="Folder of the public datasets.")] = Path(
        "../shared/datasets"
    ),
    extractor: Annotated[str, typer.Option(help="offline or llm.")] = "offline",
    task: Annotated[str, typer.Option(help="checkworthiness or matching.")] = "checkworthiness",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(help="Matching: an empty database to run in (default: a temporary file)."),
    ] = None,
) -> None:
    """Precision, recall and F1 on ClaimBuster, CheckThat! 2023 and PoliClaim; or, with
    --task matching, MAP@5 of claim matching on CLEF CheckThat! 2020 (dev split)."""
    from tracker.evaluate import (
        DatabaseNotEmpty,
        as_dict,
        load_benchmarks,
        matching_map_at_5,
        run_benchmark,
    )

    _loaded()  # (--task matching reads no settings)
    if task == "matching":
        try:
            result = matching_map_at_5(data, url=database_url) if data.is_dir() else None
        except DatabaseNotEmpty as error:
            raise typer.BadParameter(str(error), param_hint="--database-url") from None
        if result is None:
            _err(f"No claim-retrieval data under {data}: nothing to evaluate.")
            return
        summary = f"{result['name']}: MAP@5 {result['map_at_5']:.3f}, {result['queries']} queries"
        typer.echo(json.dumps(result) if as_json else summary)
        return
    if task != "checkworthiness":
        raise typer.BadParameter("use checkworthiness or matching", param_hint="--task")

    if extractor not in ("offline", "llm"):
        raise typer.BadParameter("use offline or llm", param_hint="--extractor")
    benchmarks = load_benchmarks(data) if data.is_dir() else []
    if not benchmarks:
        _err(f"No benchmark data under {data}: nothing to evaluate (see its README.md).")
        return
    settings = get_settings()
    extract, checkworthy_at = _extract_function(settings, extractor)
    results = []
    for benchmark in benchmarks:
        _err(f"evaluating on {benchmark.name} ...")
        results.append(run_benchmark(benchmark, extract, checkworthy_at))
    if as_json:
        typer.echo(json.dumps([as_dict(r) for r in results], indent=2))
        return
    typer.echo(f"extractor: {extractor}; check-worthy at >= {checkworthy_at}")
    typer.echo(f"{'benchmark':26} {'sentences':>9} {'P':>6} {'R':>6} {'F1':>6} {'all-yes F1':>10}")
    for r in results:
        typer.echo(
            f"{r.name:26} {r.sentences:>9} {r.precision:>6.3f} {r.recall:>6.3f} {r.f1:>6.3f} "
            f"{r.all_yes_f1:>10.3f}"
        )


def _extract_function(settings: Settings, extractor: str):
    """A text -> claims function for `tracker eval`, and its check-worthy threshold."""
    import asyncio

    from tracker.config import NO_MODEL_MESSAGE
    from tracker.extractors import make_extractor
    from tracker.offline import load_model
    from tracker.results import ExtractionFailed

    if extractor == "llm" and not settings.model_configured:
        _err(NO_MODEL_MESSAGE)
        raise typer.Exit(2)
    chosen = settings.model_copy(update={"extractor": extractor})
    threshold = load_model().checkworthy_threshold if extractor == "offline" else 0.5

    def extract(text: str):
        async def run():
            found = make_extractor(chosen, concurrency=4)
            try:
                return await found.extract(text, title=None)
            finally:
                await found.close()

        try:
            return asyncio.run(run()).claims
        except ExtractionFailed as failure:
            _err(f"  a document failed: {failure.reason}")
            return []

    return extract, threshold


# --- The review desk from the command line --------------------------------------------


def _queue_filter(
    status, claim_type, claimant, outlet, article, since, until, min_score, max_score,
    search, one_per_cluster, assignee, reviewer, dismissed,
):  # fmt: skip
    from tracker.queue import DISMISSED_CHOICES, QueueFilter
    from tracker.vocabulary import CLAIM_STATUSES, CLAIM_TYPES

    for value in status or []:
        if value not in CLAIM_STATUSES:
            raise typer.BadParameter(
                f"{value!r} is not a status; use {', '.join(CLAIM_STATUSES)}", param_hint="--status"
            )
    for value in claim_type or []:
        if value not in CLAIM_TYPES:
            raise typer.BadParameter(
                f"{value!r} is not a claim type; use {', '.join(CLAIM_TYPES)}", param_hint="--type"
            )
    if dismissed not in DISMISSED_CHOICES:
        raise typer.BadParameter(f"use {', '.join(DISMISSED_CHOICES)}", param_hint="--dismissed")
    return QueueFilter(
        statuses=tuple(status or ()), claim_types=tuple(claim_type or ()), claimant=claimant,
        outlet=outlet, article_id=article, since=since.date() if since else None,
        until=until.date() if until else None, min_score=min_score, max_score=max_score,
        search=search, one_per_cluster=one_per_cluster, assignee=assignee, reviewer=reviewer,
        dismissed=dismissed,
    )  # fmt: skip


@app.command()
def claims(
    status: Annotated[list[str] | None, typer.Option(help="Only this status (repeat).")] = None,
    claim_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only this claim type (repeat).")
    ] = None,
    claimant: Annotated[str | None, typer.Option(help="Only this claimant.")] = None,
    outlet: Annotated[str | None, typer.Option(help="Only this outlet.")] = None,
    article: Annotated[
        int | None, typer.Option(min=1, max=2**31 - 1, help="Only this article's claims.")
    ] = None,
    since: Annotated[datetime | None, typer.Option(help="Published on or after.")] = None,
    until: Annotated[datetime | None, typer.Option(help="Published on or before.")] = None,
    min_score: Annotated[float, typer.Option(min=0, max=1, help="Check-worthiness from.")] = 0.0,
    max_score: Annotated[float, typer.Option(min=0, max=1, help="Check-worthiness to.")] = 1.0,
    search: Annotated[
        str | None, typer.Option(help='Words, "a phrase", a OR b, -word, numbers like 3.1%.')
    ] = None,
    one_per_cluster: Annotated[bool, typer.Option(help="Each cluster once.")] = False,
    assignee: Annotated[
        str | None, typer.Option(help="Assigned to this person, or '(nobody)'.")
    ] = None,
    reviewer: Annotated[str | None, typer.Option(help="Last verdict by this person.")] = None,
    dismissed: Annotated[str, typer.Option(help="Dismissed claims: hide, only, include.")] = "hide",
    sort: Annotated[
        str, typer.Option(help="checkworthiness, newest, updated or article.")
    ] = "checkworthiness",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Claims per page.")] = 50,
    page: Annotated[int, typer.Option(min=1, max=10_000_000, help="Which page.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The review queue, as the dashboard shows it: the same filters, sorts and pages.
    With --json, each claim carries its `version`, for `tracker review ID@VERSION`."""
    from tracker.queue import SORT_WORDS, page_rows, status_counts, total
    from tracker.sanitize import printable

    if sort not in SORT_WORDS:
        raise typer.BadParameter(f"use {', '.join(SORT_WORDS)}", param_hint="--sort")
    flt = _queue_filter(
        status, claim_type, claimant, outlet, article, since, until, min_score, max_score,
        search, one_per_cluster, assignee, reviewer, dismissed,
    )  # fmt: skip
    engine = _open_database(get_settings().database_url)
    matching = total(status_counts(engine, flt), flt)
    rows = page_rows(engine, flt, page=page - 1, page_size=limit, sort=sort)
    first = (page - 1) * limit
    _err(f"{matching} claims match; {first + 1 if rows else 0}-{first + len(rows)} shown")
    for row in rows:
        c = row.claim
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "id": c.id,
                        "version": c.version,
                        "article_id": c.article_id,
                        "article_title": row.article_title,
                        "outlet": row.outlet,
                        "text": c.text,
                        "quote": c.quote,
                        "claimant": c.claimant,
                        "claim_type": c.claim_type,
                        "checkworthiness": c.checkworthiness,
                        "status": c.status,
                        "rating": c.rating,
                        "assignee": c.assignee,
                        "dismissed": bool(c.dismissed),
                        "reviewed_by": c.reviewed_by,
                        "reviewed_at": c.reviewed_at.isoformat() if c.reviewed_at else None,
                        "review_note": c.review_note,
                    }
                )
            )  # fmt: skip  (ASCII: no byte of it can drive a terminal)
        else:
            flags = " dismissed" if c.dismissed else ""
            who = f" → {c.assignee}" if c.assignee else ""
            typer.echo(
                f"{c.id:>7}  {c.checkworthiness:.2f}  {c.status:<12}{flags}{who}  "
                f"{printable(c.text)}"
            )


@app.command()
def review(
    claim_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...",
            help="Claim ids; ID@VERSION refuses the change if the claim has changed since "
            "that version (as `tracker claims --json` printed it).",
        ),
    ],
    actor: Annotated[
        str | None,
        typer.Option(
            "--as", envvar="TRACKER_REVIEWER", help="Who acts (default $TRACKER_REVIEWER)."
        ),
    ] = None,
    status: Annotated[str | None, typer.Option(help="Give this status.")] = None,
    note: Annotated[str | None, typer.Option(help="Why: kept with the change.")] = None,
    assign_to: Annotated[
        str | None, typer.Option("--assign", help="Assign to this person.")
    ] = None,
    unassign: Annotated[bool, typer.Option(help="Assign to nobody.")] = False,
    dismiss: Annotated[bool, typer.Option(help="Not check-worthy: out of the queue.")] = False,
    restore: Annotated[bool, typer.Option(help="Bring dismissed claims back.")] = False,
    source: Annotated[str | None, typer.Option(help="Add this source URL to each claim.")] = None,
    source_title: Annotated[str | None, typer.Option(help="The source's title.")] = None,
    stance: Annotated[str, typer.Option(help="supports, refutes or context.")] = "context",
) -> None:
    """Act on claims as the dashboard does, through the same library and checks: status,
    assignment, dismissal, sources. Each kind of change is one transaction over all the
    claims, refused as a whole if any of them changed meanwhile."""
    from pydantic import ValidationError

    from tracker import review as desk
    from tracker.models import SourceCreate
    from tracker.vocabulary import CLAIM_STATUSES, STANCES

    if not (actor or "").strip():
        raise typer.BadParameter("say who acts: --as NAME or TRACKER_REVIEWER", param_hint="--as")
    if status is not None and status not in CLAIM_STATUSES:
        raise typer.BadParameter(f"use {', '.join(CLAIM_STATUSES)}", param_hint="--status")
    if (dismiss and restore) or (assign_to and unassign):
        raise typer.BadParameter("contradictory options")
    if stance not in STANCES:
        raise typer.BadParameter(f"use {', '.join(STANCES)}", param_hint="--stance")
    if not any((status, assign_to, unassign, dismiss, restore, source)):
        raise typer.BadParameter("nothing to do: give --status, --assign, --dismiss, ...")
    seen: dict[int, int | None] = {}
    for raw in claim_ids:
        number, _, version = raw.partition("@")
        if not _small_number(number) or (version and not _small_number(version)):
            raise typer.BadParameter(f"{raw!r}: use ID or ID@VERSION", param_hint="ID")
        seen[int(number)] = int(version) if version else None
    try:
        new_source = SourceCreate(url=source, title=source_title, stance=stance) if source else None
    except ValidationError:
        raise typer.BadParameter(
            "not a web address (http:// or https://)", param_hint="--source"
        ) from None
    engine = _open_database(get_settings().database_url)
    found = {c.id: c.version for c in _claims_by_id(engine, list(seen))}
    if missing := [i for i in seen if i not in found]:
        _err(f"No claim with id {', '.join(map(str, missing))}; nothing changed.")
        raise typer.Exit(1)
    versions = {i: seen[i] if seen[i] is not None else v for i, v in found.items()}
    assignee = None if unassign else assign_to if assign_to else desk.KEEP
    dismissed = True if dismiss else False if restore else None
    try:  # everything asked, for all the claims, in one transaction
        updated = desk.review(
            engine, versions, actor=actor, status=status, note=note, assignee=assignee,
            dismissed=dismissed, source=new_source,
        )  # fmt: skip
    except desk.StaleEdit as stale:
        _err(_shown(f"Not saved: {stale}"))
        raise typer.Exit(1) from None
    except (desk.NotAllowed, LookupError, ValueError) as refused:
        _err(_shown(f"Not done: {refused}"))
        raise typer.Exit(1) from None
    for claim in updated:
        flags = ", dismissed" if claim.dismissed else ""
        who = f", assigned to {claim.assignee}" if claim.assignee else ""
        typer.echo(
            _shown(f"claim {claim.id}: {claim.status}{who}{flags} (version {claim.version})")
        )


def _small_number(text: str) -> bool:
    """A whole number a database id or version can hold."""
    return text.isascii() and text.isdigit() and int(text) < 2**31


def _claims_by_id(engine: Engine, ids: list[int]) -> list[Claim]:
    from sqlmodel import Session, select

    from tracker.models import Claim

    with Session(engine) as session:
        return list(session.exec(select(Claim).where(Claim.id.in_(ids)).order_by(Claim.id)))


# --- Monitoring: feeds and `watch` (logic in tracker/feeds.py and tracker/monitor.py) ---

feeds_app = typer.Typer(help="The news feeds `tracker watch` follows.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's URL: RSS, Atom or a news sitemap.")],
    outlet: Annotated[str | None, typer.Option(help="Outlet of its articles.")] = None,
) -> None:
    """Follow a feed: `tracker watch` reads its new entries."""
    from tracker.feeds import add_feed
    from tracker.monitor import shown_url

    engine = _open_database(get_settings().database_url)
    try:
        feed = add_feed(engine, url, outlet)
    except ValueError as refused:
        _err(f"Not added: {refused}")
        raise typer.Exit(1) from None
    _err(f"Following feed {feed.id}: {shown_url(feed.url)}")


@feeds_app.command("list")
def feeds_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The feeds followed, with their last fetch, errors and back-off."""
    from tracker.monitor import feed_lines

    engine = _open_database(get_settings().database_url)
    for line in feed_lines(engine, as_json=as_json):
        typer.echo(_shown(line))


@feeds_app.command("remove")
def feeds_remove(
    url: Annotated[str, typer.Argument(help="The feed's URL (or its id in `feeds list`).")],
) -> None:
    """Stop following a feed (its articles and their appearances stay)."""
    from tracker.feeds import remove_feed
    from tracker.monitor import shown_url

    engine = _open_database(get_settings().database_url)
    try:
        feed = remove_feed(engine, url)
    except LookupError as missing:
        _err(str(missing))
        raise typer.Exit(1) from None
    _err(f"No longer following {shown_url(feed.url)}")


@app.command()
def watch(
    once: Annotated[bool, typer.Option(help="One pass, then exit (cron).")] = False,
    interval: Annotated[
        float | None,
        typer.Option(min=1, help="Seconds between passes (default TRACKER_WATCH_INTERVAL)."),
    ] = None,
) -> None:
    """Fetch the feeds, read and extract their new articles, raise and send repeat-claim
    alerts; every INTERVAL seconds, or once. Exit status with --once: 0, or 1 when a feed,
    a page or an extraction failed."""
    from sqlalchemy import exc as sa_exc

    from tracker.db import StorageError, storage_problem
    from tracker.monitor import describe_pass
    from tracker.monitor import watch as run_watch

    settings = get_settings()
    engine = _open_database(settings.database_url)

    def show(report) -> None:
        for line in describe_pass(report):
            _err(line)

    try:
        report = run_watch(
            engine, settings, once=once, interval=interval, on_pass=show, on_error=_err
        )
    except StorageError as refused:
        _err(f"Cannot write to the database {_db_label(settings.database_url)}: {refused}")
        raise typer.Exit(2) from None
    except sa_exc.SQLAlchemyError as exc:
        _err(f"The database {_db_label(settings.database_url)}: {storage_problem(exc)[0]}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        _err("Stopped.")
        raise typer.Exit(130) from None
    failed = report.count("failed") or report.pages_failed or report.extraction_failed
    raise typer.Exit(1 if failed else 0)


@app.command()
def info() -> None:
    """Show the configuration in use (never secrets) and what the database holds."""
    from sqlmodel import Session, func, select

    from tracker.models import Article, Claim
    from tracker.prompts import load_prompts

    settings = get_settings()
    engine = _open_database(settings.database_url)
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


def main() -> None:
    """The `tracker` console script. The garbage collector is paused while the command
    loads its modules (see _loaded). At exit what is still alive is frozen out of its sight:
    the interpreter's last collections otherwise walk every object a long import made
    (0.3 s of its wall time, bench/import_throughput.py). The databases are closed before
    that (tracker.db registers their closing later, and atexit runs the last one first), so
    nothing left to the freeze holds a connection."""
    atexit.register(gc.freeze)  # registered first, so it runs last
    gc.disable()  # until the command's modules are loaded: _loaded()
    app()


if __name__ == "__main__":
    main()
