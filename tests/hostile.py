"""Hostile input files from the review of issue 12, each beside what a careful user would
expect of it. Shared by the reader tests and the whole-folder import test."""

from __future__ import annotations

import json
from pathlib import Path

DEPTH = 100_000

# Nine levels of YAML aliases: 425 bytes that stand for 9**9 strings.
ALIAS_BOMB = (
    "---\n"
    + "".join(
        f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
        for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=True)
    )
    + "title: *i\n---\nOfficials said 12 bridges need repairs.\n"
)

GOOD_TEXT = "Officials said {n} bridges in the district need urgent repairs this year."


def write_hostile(folder: Path) -> dict[str, str]:
    """Write every hostile file into `folder`; returns {file name: what the error says}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bomb.md").write_text(ALIAS_BOMB, encoding="utf-8")
    (folder / "deep.json").write_text("[" * DEPTH + "]" * DEPTH)
    (folder / "deep.jsonl").write_text('{"text": ' + "[" * DEPTH + "]" * DEPTH + "}\n")
    (folder / "nested-title.json").write_text(
        json.dumps({"text": "The mayor said taxes rose 4% last year.", "title": {"a": [1]}})
    )
    return {
        "bomb.md": "aliases (*name) are not allowed in front matter",
        "deep.json": "nested too deeply",
        "deep.jsonl:1": "nested too deeply",
        "nested-title.json": "title: must be a single value, not a dict",
    }


def write_repaired(folder: Path) -> dict[str, str]:
    """Files that are read, with a repair and a warning: {file name: what the warning says}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "surrogate.jsonl").write_text(
        '{"text": "Prices rose 5% in May \\ud800 the statistics office said.", "title": "T"}\n'
    )
    stray = "Le préfet a déclaré que les travaux du pont coûteront 4 millions d'euros.".encode()
    (folder / "stray-byte.txt").write_bytes(stray[:20] + b"\xff" + stray[20:])
    return {"surrogate.jsonl:1": "lone surrogate", "stray-byte.txt": "stray byte"}


def write_good(folder: Path, n: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"good-{i}.txt"
        (folder / name).write_text(GOOD_TEXT.format(n=i + 3), encoding="utf-8")
        names.append(name)
    return names
