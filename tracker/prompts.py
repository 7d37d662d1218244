"""The prompt files under prompts/, and the hash that versions them.

Every extraction stores the hash, so a claim can always be traced to the exact wording
that produced it, and a changed prompt is visible in the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

PROMPT_FILES = (
    "extract_claims.system.md",
    "extract_claims.user.md",
    "reask_claims.md",
    "reask_format.md",
)


@dataclass(frozen=True)
class PromptSet:
    system: str
    user: Template
    reask_claims: Template
    reask_format: Template
    hash: str

    def user_message(self, *, title: str | None, text: str, part: int, parts: int) -> str:
        return self.user.substitute(title=title or "(none)", text=text, part=part, parts=parts)

    def reask_claims_message(self, errors: list[str]) -> str:
        return self.reask_claims.substitute(errors="\n".join(f"- {e}" for e in errors))

    def reask_format_message(self, error: str) -> str:
        return self.reask_format.substitute(error=error)


@cache
def load_prompts() -> PromptSet:
    folder = resources.files("tracker.prompt_files")
    texts = {name: folder.joinpath(name).read_text(encoding="utf-8") for name in PROMPT_FILES}
    digest = hashlib.sha256()
    for name in PROMPT_FILES:
        digest.update(name.encode() + b"\0" + texts[name].encode() + b"\0")
    return PromptSet(
        system=texts["extract_claims.system.md"].strip(),
        user=Template(texts["extract_claims.user.md"].strip()),
        reask_claims=Template(texts["reask_claims.md"].strip()),
        reask_format=Template(texts["reask_format.md"].strip()),
        hash=digest.hexdigest(),
    )
