"""Inputs that once hung, ate memory or killed a batch (issue 12): each is now that input's
own error or warning, and the inputs beside it are read."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from tests.hostile import ALIAS_BOMB, write_good, write_hostile, write_repaired
from tracker.readers import ReadError, parse, read_articles


def _read(folder: Path):
    items = list(read_articles([str(folder)]))
    good = {Path(i.source_path).name: i for i in items if not isinstance(i, ReadError)}
    bad = {Path(i.source).name: i.reason for i in items if isinstance(i, ReadError)}
    return good, bad


def test_a_yaml_alias_bomb_is_refused_at_once():
    started = time.monotonic()
    (item,) = parse("bomb.md", ALIAS_BOMB.encode(), "md", None)
    assert time.monotonic() - started < 2
    assert isinstance(item, ReadError)
    assert "aliases (*name) are not allowed in front matter" in item.reason


@pytest.mark.parametrize(
    ("front", "reason"),
    [
        ("title: [a, b]", "title: must be a single value, not a list"),
        ("title: {x: 1}", "title: must be a single value, not a dict"),
        (f"title: {'x' * 3000}", "title: longer than 2,000 characters"),
        ("- just\n- a list", "front matter must be keys and values"),
    ],
)
def test_front_matter_fields_must_be_short_single_values(front, reason):
    (item,) = parse("a.md", f"---\n{front}\n---\nThe text.\n".encode(), "md", None)
    assert isinstance(item, ReadError) and reason in item.reason


def test_authors_may_be_a_list_of_names():
    (item,) = parse("a.md", b"---\nauthor: [Ann Poe, Jo Lee]\n---\nThe text.\n", "md", None)
    assert item.author == "Ann Poe, Jo Lee"


def test_one_bad_input_is_its_own_error_and_the_rest_are_read(tmp_path):
    errors = write_hostile(tmp_path)
    good_names = write_good(tmp_path)
    good, bad = _read(tmp_path)
    assert sorted(good) == good_names
    assert set(bad) == set(errors)
    for name, reason in errors.items():
        assert reason in bad[name], name


def test_lone_surrogates_and_stray_bytes_are_replaced_with_a_warning(tmp_path):
    warnings = write_repaired(tmp_path)
    good, bad = _read(tmp_path)
    assert bad == {}
    for name, warning in warnings.items():
        assert any(warning in w for w in good[name].warnings), good[name].warnings
        assert "\ufffd" in good[name].text
    assert "préfet" in good["stray-byte.txt"].text and "coûteront" in good["stray-byte.txt"].text
    good["surrogate.jsonl:1"].text.encode("utf-8")  # storable and hashable


def test_a_doctype_internal_subset_does_not_leak_into_the_text():
    html = (
        '<!DOCTYPE html [\n<!ENTITY a "b">\n]>\n<p>The council said taxes rose 4% last year, '
        "the most since 2001, and the mayor agreed on Monday.</p>"
    )
    (item,) = parse("a.html", html.encode(), "html", None)
    assert item.text.startswith("The council said")


def test_an_unreadable_subfolder_is_reported(tmp_path, monkeypatch):
    write_good(tmp_path / "ok")
    locked = tmp_path / "locked"
    write_good(locked)
    real_scandir = os.scandir

    def scandir(path):  # as root, chmod 000 locks nothing out: the OS's answer, simulated
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    good, bad = _read(tmp_path)
    assert len(good) == 3
    assert bad == {"locked": "cannot read this folder: Permission denied"}


def test_files_deleted_during_the_run_are_reported(tmp_path):
    names = write_good(tmp_path, 5)
    items = read_articles([str(tmp_path)])
    first = next(items)
    for name in names[2:]:
        (tmp_path / name).unlink()
    rest = list(items)
    assert not isinstance(first, ReadError)
    reasons = {
        Path(getattr(i, "source_path", None) or i.source).name: getattr(i, "reason", None)
        for i in rest
    }
    assert reasons == {
        names[1]: None,
        **{name: "no such file (deleted, or a link to nothing)" for name in names[2:]},
    }


def test_a_link_to_nothing_is_reported(tmp_path):
    write_good(tmp_path, 1)
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    _, bad = _read(tmp_path)
    assert bad == {"gone.txt": "no such file (deleted, or a link to nothing)"}


# --- Second review: special files, names that cannot be looked up, floods ---------------

# Runs read_articles (or count_inputs) in a child process under a memory limit and a time
# limit, so that an unbounded read (/dev/zero) or a hang (a named pipe) fails the test
# instead of taking the machine or the suite with it.
_BOUNDED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
from tracker.readers import count_inputs, read_articles
what, paths = sys.argv[1], sys.argv[2:]
if what == "count":
    print(json.dumps(count_inputs(paths)))
else:
    print(json.dumps([[getattr(i, "source_path", None) or i.source, getattr(i, "reason", None)]
                      for i in read_articles(paths)]))
"""


def _bounded(what: str, *paths: Path | str, seconds: float = 60):
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _BOUNDED, what, *map(str, paths)],
        capture_output=True, text=True, timeout=seconds,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_devices_and_named_pipes_are_refused_without_being_opened(tmp_path):
    write_good(tmp_path, 1)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")  # its size says 0: it never ends
    (tmp_path / "pipe.txt").symlink_to(tmp_path / "fifo")  # opening it would block
    (tmp_path / "pipe.jsonl").symlink_to(tmp_path / "fifo")
    (tmp_path / "random.jsonl").symlink_to("/dev/urandom")
    os.mkfifo(tmp_path / "named.md")
    started = time.monotonic()
    found = dict(_bounded("read", tmp_path))
    assert time.monotonic() - started < 30
    assert found.pop(str(tmp_path / "good-0.txt")) is None
    assert found == {
        str(tmp_path / "zero.txt"): "not a regular file (a device); not read",
        str(tmp_path / "random.jsonl"): "not a regular file (a device); not read",
        str(tmp_path / "pipe.txt"): "not a regular file (a named pipe); not read",
        str(tmp_path / "pipe.jsonl"): "not a regular file (a named pipe); not read",
        str(tmp_path / "named.md"): "not a regular file (a named pipe); not read",
    }
    # The progress bar's count opens none of them either.
    assert _bounded("count", tmp_path, seconds=30) == 6


def test_counting_a_huge_jsonl_line_holds_only_a_block_in_memory(tmp_path):
    with (tmp_path / "big.jsonl").open("wb") as f:  # 2 GB of one line, sparse on disk
        f.truncate(2_000_000_000)
    (tmp_path / "two.jsonl").write_text('{"text": "a"}\n\n  \n{"text": "b"}')
    assert _bounded("count", tmp_path / "big.jsonl", tmp_path / "two.jsonl", seconds=120) == 3


def test_a_name_that_cannot_be_looked_up_is_that_inputs_error(tmp_path, monkeypatch):
    names = write_good(tmp_path, 2)
    too_long = str(tmp_path / ("x" * 300 + ".txt"))
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.txt").write_text("The mayor said 4 bridges will be repaired this year.")
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # as root, chmod 000 locks nothing out: simulated
        if str(path).startswith(str(locked) + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    paths = [str(tmp_path / names[0]), too_long, str(locked / "a.txt"), str(tmp_path / names[1])]
    items = list(read_articles(paths))
    assert [getattr(i, "reason", None) for i in items] == [
        None, "File name too long", "Permission denied", None,
    ]  # fmt: skip
    from tracker.readers import count_inputs

    assert count_inputs(paths) == 4


def test_a_single_name_too_long_is_an_error_not_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from tracker.cli import app

    result = CliRunner().invoke(app, ["import", "x" * 300 + ".txt"])
    assert result.exit_code == 1, result.output
    assert "File name too long" in result.stderr and "Traceback" not in result.output


def test_a_glob_reports_the_folders_it_cannot_look_into(tmp_path, monkeypatch):
    write_good(tmp_path / "in", 1)
    locked = tmp_path / "in" / "sub"
    write_good(locked, 1)
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    for pattern in (f"{tmp_path}/in/**/*.txt", f"{tmp_path}/in/*/*.txt"):
        items = list(read_articles([pattern]))
        errors = {i.source: i.reason for i in items if isinstance(i, ReadError)}
        assert errors == {str(locked): "cannot read this folder: Permission denied"}, pattern


def test_a_tag_with_thousands_of_attributes_is_read_at_once():
    attributes = " ".join(f"a{i}=1" for i in range(40_000))  # 43 s in the HTML parser
    text = "The council said taxes rose 4% last year."
    html = f"<html><body><p {attributes}>{text}</p></body></html>"
    started = time.monotonic()
    (item,) = parse("flood.html", html.encode(), "html", None)
    assert time.monotonic() - started < 10
    assert item.text == text
    assert any("more than 256 attributes" in w for w in item.warnings)


def test_a_json_list_of_millions_of_non_articles_is_a_few_errors():
    items = list(parse("zeros.json", b"[" + b"0," * 1_000_000 + b"0]", "json", None))
    assert len(items) == 21
    assert items[0].source == "zeros.json[0]" and "expected a JSON object" in items[0].reason
    assert items[-1].reason == "and 999,981 more unreadable entries (the first 20 are listed)"


def test_a_jsonl_file_of_bad_lines_is_a_few_errors(tmp_path):
    lines = ['{"text": "The mayor said 4 bridges need repairs."}', *["0"] * 5_000]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    items = list(read_articles([str(tmp_path / "bad.jsonl")]))
    assert len(items) == 22 and not isinstance(items[0], ReadError)
    assert items[-1].reason == "and 4,980 more unreadable entries (the first 20 are listed)"


@pytest.mark.parametrize(
    "text",
    [
        "Безработица в мае снизилась до 3,1 процента, сообщило министерство труда.",
        "Η ανεργία μειώθηκε στο 3,1 τοις εκατό τον Μάιο, ανακοίνωσε το υπουργείο.",
        "5月の失業率は3.1パーセントに低下したと労働省が発表した。",
    ],
    ids=["russian", "greek", "japanese"],
)
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_read_in_any_script(tmp_path, text, encoding):
    (tmp_path / "wide.txt").write_bytes(text.encode(encoding))
    (item,) = read_articles([str(tmp_path / "wide.txt")])
    assert not isinstance(item, ReadError), item.reason
    assert item.text == text
