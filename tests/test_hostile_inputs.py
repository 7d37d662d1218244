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
