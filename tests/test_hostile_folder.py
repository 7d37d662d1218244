"""Issue 12's acceptance test: one folder holding every hostile input beside good files,
imported by `tracker import` as a user runs it (a separate process): bounded time and
memory, one error (or warning) per bad input, the good files stored, a summary, exit 1."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.hostile import write_good, write_hostile, write_repaired
from tests.test_offline import _distinct_sentences

# Runs the CLI with one folder made unreadable: as root (CI), chmod 000 locks nothing out,
# so the operating system's refusal is simulated for that folder alone.
RUNNER = """
import errno, os, sys
from pathlib import Path
locked = Path(sys.argv[1])
real = os.scandir
def scandir(path="."):
    if Path(path) == locked:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    return real(path)
os.scandir = scandir
from tracker.cli import app
app(sys.argv[2:])
"""


def _hostile_folder(folder: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    errors = write_hostile(folder)
    warnings = write_repaired(folder)
    good = write_good(folder)
    (folder / "doctype.html").write_text(
        '<!DOCTYPE html [\n<!ENTITY a "b">\n]>\n<html><body><p>The council said taxes rose 4% '
        "last year, the most since 2001, and the mayor agreed on Monday.</p></body></html>"
    )
    (folder / "escapes.md").write_text(
        '---\ntitle: "\\e[2J\\e]0;pwned\\a Bridge report \\e[31mred"\n---\n'
        "The mayor said 40 bridges need repairs.\n"
    )
    (folder / "bidi.txt").write_text(
        "\u202eRamon Llull\u202c said the city spent 12 million euros on the new bridge in 2023."
    )
    (folder / "large.txt").write_text(" ".join(_distinct_sentences(1_500)))  # 130 KB, all claims
    (folder / "gone.txt").symlink_to(folder / "deleted-before-it-was-read.txt")
    (folder / "locked").mkdir()
    write_good(folder / "locked", 1)
    errors |= {
        "gone.txt": "no such file (deleted, or a link to nothing)",
        "locked": "cannot read this folder: Permission denied",
    }
    stored = [*good, "doctype.html", "escapes.md", "bidi.txt", "large.txt", *warnings]
    return errors, warnings, stored


def test_a_folder_of_every_hostile_input_beside_good_files(tmp_path):
    folder = tmp_path / "inbox"
    errors, warnings, stored = _hostile_folder(folder)
    db = tmp_path / "hostile.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TRACKER_"))}
    env["TRACKER_DATABASE_URL"] = f"sqlite:///{db}"  # the offline extractor: no model
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(folder / "locked"), "import", str(folder)],
            env=env, stdout=stdout, stderr=stderr, cwd=tmp_path,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    output = err.read_text(encoding="utf-8") + out.read_text(encoding="utf-8")

    assert os.waitstatus_to_exitcode(status) == 1, output
    assert seconds < 120, seconds  # the alias bomb alone took 6.5 minutes
    assert usage.ru_maxrss < 1_000_000, usage.ru_maxrss  # KiB: under 1 GB (it took 8.3 GB)
    failed = output.split("Failed (", 1)[1]
    for name, reason in errors.items():
        assert f"{folder / name}: {reason}" in failed or f"{folder / name}" in failed, name
        assert reason in failed, reason
    for name, warning in warnings.items():
        assert f"! {folder / name}: " in output and warning in output, name
    assert "Traceback" not in output
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    assert f"{len(stored) + len(errors)} article(s): {len(stored)} extracted" in output
    with sqlite3.connect(db) as conn:
        sources = {Path(row[0]).name for row in conn.execute("SELECT source_path FROM article")}
        texts = [row[0] for row in conn.execute("SELECT text FROM article")]
        claimants = {row[0] for row in conn.execute("SELECT claimant FROM claim")}
    assert sources == set(stored)
    assert not any("]>" in text for text in texts)
    assert "Ramon Llull" in claimants and not any("\u202e" in (c or "") for c in claimants)
