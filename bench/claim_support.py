"""How many genuine claims the claim-support check (tracker/support.py) wrongly drops.

    python bench/claim_support.py [--speeches 26]

1. The recorded sample: every claim the recorded model answers (tests/cassettes) pair with
   the sample article, except the test that records invented claims on purpose.
2. The State of the Union corpus (../shared/corpora), through the real extraction path
   (`extract_claims`: the openai SDK, grounding, the check, re-asks) against the loopback
   server of tests/fakellm.py. No real model runs offline, so the server writes the claims a
   model is asked for, by fixed rules, from the factual sentences of each part it is sent
   (the offline model's P(factual) at its threshold): the sentence as it stands; the
   sentence made standalone (a leading "And"/"But"/"So" dropped, "I"/"we" named as the
   President/the United States); with the time frame the title gives ("In 1996, ...");
   its first clause only; reworded (two dozen common words replaced by others: "raised" for
   "increased", "%" for "percent", "U.S. citizens" for "Americans").
   Re-asks are answered with no claim, so every claim the check refuses counts as dropped.
   Two negative controls, which should drop: each quote paired with a claim from another
   speech ("invented"), and each sentence turned around, a direction word replaced by its
   opposite ("increased" by "decreased", "more" by "fewer") or else a "not" added after its
   first auxiliary ("turned around").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "state-of-the-union"
SAMPLE = ROOT / "data" / "articles" / "nato-peacekeepers-lavrov.txt"
NEGATIVE_CASSETTES = {"test_claims_their_quotes_do_not_support_are_reasked_then_dropped.yaml"}


def recorded_sample() -> tuple[int, list[str]]:
    """(claims checked, reasons of those dropped) for the recorded sample's claims."""
    from tests.fakellm import article_text
    from tracker.grounding import ArticleIndex
    from tracker.support import paragraphs_around, unsupported

    text = SAMPLE.read_text(encoding="utf-8")
    article = ArticleIndex(text)
    title = "Lavrov warns NATO peacekeepers in Ukraine would mean direct clash"
    pairs: dict[tuple[str, str], str] = {}  # (claim, quote) -> the text the model was sent
    for path in sorted((ROOT / "tests" / "cassettes").rglob("*.yaml")):
        if path.name in NEGATIVE_CASSETTES:
            continue
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            request = json.loads(interaction["request"]["body"])
            part = article_text(request)
            if not part.strip() or part.strip() not in text:
                continue  # another article (the CLI tests' own texts)
            try:
                body = json.loads(interaction["response"]["body"]["string"])
                content = json.loads(body["choices"][0]["message"]["content"])
            except (KeyError, TypeError, ValueError, IndexError):
                continue
            for claim in content.get("claims", []) if isinstance(content, dict) else []:
                if isinstance(claim, dict) and isinstance(claim.get("quote"), str):
                    pairs.setdefault((claim["claim"], claim["quote"]), part)
    checked, dropped = 0, []
    for (claim, quote), part in pairs.items():
        span = article.locate(quote)
        if span is None:
            continue  # an ungrounded quote (the grounding tests): never reaches the check
        checked += 1
        near = paragraphs_around(text, *span)
        if why := unsupported(claim, text[span[0] : span[1]], near, f"{title}\n{part}"):
            dropped.append(f"{claim} -> {why}")
    return checked, dropped


# --- The corpus through the loopback server ---------------------------------------------

_OPENERS = re.compile(r"^(?:And|But|So|Now|Yet|Today|Tonight),?\s+")
_PRONOUNS = [
    (re.compile(r"^I'm\b"), "The President is"),
    (re.compile(r"^I've\b"), "The President has"),
    (re.compile(r"^I\b"), "The President"),
    (re.compile(r"^We're\b"), "The United States is"),
    (re.compile(r"^We've\b"), "The United States has"),
    (re.compile(r"^We\b"), "The United States"),
    (re.compile(r"^Our\b"), "The country's"),
]


# A model's rewording: other words for common ones (the check matches words, not meanings).
_SYNONYMS = {
    "increase": "raise", "increased": "raised", "created": "added", "create": "add",
    "cut": "reduce", "help": "assist", "children": "kids", "nearly": "almost",
    "more than": "over", "percent": "%", "billion": "bn", "million": "m", "Americans":
    "U.S. citizens", "country": "nation", "government": "administration", "jobs":
    "positions", "people": "citizens", "years": "yrs", "first": "1st", "new": "fresh",
    "since": "from", "lowest": "smallest", "highest": "largest", "passed": "approved",
}  # fmt: skip
_SYNONYM = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, _SYNONYMS)) + r")(?![\w-])")


# Turning a sentence around: a direction word for its opposite, else a negation added.
_FLIPS = {
    "increased": "decreased", "decreased": "increased", "rose": "fell", "fell": "rose",
    "more": "fewer", "higher": "lower", "lower": "higher", "up": "down", "down": "up",
    "cut": "raised", "won": "lost", "lost": "won", "passed": "rejected", "grew": "shrank",
    "support": "oppose", "oppose": "support", "best": "worst", "lowest": "highest",
    "highest": "lowest", "deficit": "surplus", "surplus": "deficit",
}  # fmt: skip
_FLIP = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, _FLIPS)) + r")(?![\w-])")
_AUXILIARY = re.compile(r"\b(is|are|was|were|has|have|had|will|can|did|does|do)\b(?! not)")


def turned_around(sentence: str) -> str | None:
    """The sentence saying the opposite, or None when it has nothing to turn."""
    if _FLIP.search(sentence):
        return _FLIP.sub(lambda m: _FLIPS[m[0]], sentence, count=1)
    if _AUXILIARY.search(sentence):
        return _AUXILIARY.sub(lambda m: f"{m[0]} not", sentence, count=1)
    return None


def rewrite(sentence: str, style: str, year: str) -> str:
    if style == "verbatim":
        return sentence
    if style == "reworded":
        return _SYNONYM.sub(lambda m: _SYNONYMS[m[0]], rewrite(sentence, "standalone", year))
    if style == "shortened":  # the first clause only, made standalone
        out = rewrite(sentence, "standalone", year)
        clause = re.split(r",\s|;\s|\s(?:because|after|while|which|and then)\s", out)[0]
        return clause.rstrip(".") + "." if len(clause.split()) >= 5 else out
    if style == "standalone":
        out = _OPENERS.sub("", sentence)
        out = out[:1].upper() + out[1:]
        for pattern, name in _PRONOUNS:
            out = pattern.sub(name, out)
        return out
    if style == "time frame":
        return f"In {year}, {sentence[:1].lower()}{sentence[1:]}"
    raise ValueError(style)


def responder(style: str, decoys: list[str]):
    """The loopback server's answers: claims for the factual sentences of each part."""
    from tests.fakellm import article_text, claims_reply
    from tracker.offline import load_model, sentence_spans

    model = load_model()
    rng = random.Random(12)

    def respond(request: dict) -> object:
        if len(request["messages"]) > 2:  # a re-ask: the claims are left out
            return claims_reply()
        text = article_text(request)
        title = request["messages"][1]["content"].split("\n", 1)[0]
        year = (re.findall(r"\b(1[89]\d\d|20\d\d)\b", title) or [""])[-1]
        spans = [(a, b) for a, b in sentence_spans(text) if len(text[a:b].split()) >= 8]
        sentences = [text[a:b] for a, b in spans]
        if not sentences:
            return claims_reply()
        factual = model.probabilities(sentences)
        claims = []
        for sentence, (_, unimportant, checkworthy) in zip(sentences, factual, strict=True):
            if unimportant + checkworthy < model.claim_threshold:
                continue
            if style == "turned around":
                claim = turned_around(rewrite(sentence, "standalone", year))
                if claim is None:
                    continue
            elif style == "invented":
                claim = rng.choice(decoys)
            else:
                claim = rewrite(sentence, style, year)
            claims.append({"quote": sentence, "claim": claim, "claim_type": "other"})
        return claims_reply(*claims)

    return respond


async def through_server(style: str, speeches: list[Path], decoys: list[str]) -> Counter:
    from tests.conftest import make_settings
    from tests.fakellm import FakeLLM
    from tracker.extract import extract_claims
    from tracker.llm import ModelClient

    counts: Counter = Counter()
    with FakeLLM(respond=responder(style, decoys)) as fake:
        settings = make_settings(
            "sqlite://", openai_base_url=fake.base_url, max_reasks=1, response_format="json_schema"
        )
        client = ModelClient(settings, concurrency=1)
        try:
            for path in speeches:
                text = path.read_text(encoding="utf-8")
                title = text.split("\n", 1)[0]
                result = await extract_claims(text, title=title, client=client, settings=settings)
                counts["kept"] += len(result.claims)
                counts["dropped"] += result.dropped
                for reason in result.drop_reasons:
                    counts["why: " + reason.rsplit(": ", 1)[-1].split(" (")[0][:60]] += 1
        finally:
            await client.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeches", type=int, default=26)
    args = parser.parse_args()

    checked, dropped = recorded_sample()
    print(f"recorded sample: {len(dropped)} of {checked} genuine claims dropped")
    for line in dropped:
        print(f"  dropped: {line}")

    speeches = sorted(CORPUS.glob("*.txt"))[: args.speeches]
    if not speeches:
        sys.exit(f"no corpus at {CORPUS}: the State of the Union part needs it")
    # Decoys for the negative control: sentences of a speech not in the run, else the last.
    decoy_text = (sorted(CORPUS.glob("*.txt"))[-1]).read_text(encoding="utf-8")
    decoys = [s for s in re.split(r"(?<=[.!?])\s+", decoy_text) if len(s.split()) >= 8]
    print(f"State of the Union, {len(speeches)} speeches, through the loopback server:")
    styles = ("verbatim", "standalone", "time frame", "shortened", "reworded", "invented",
              "turned around")  # fmt: skip
    for style in styles:
        counts = asyncio.run(through_server(style, speeches, decoys))
        total = counts["kept"] + counts["dropped"]
        share = counts["dropped"] / total if total else 0.0
        control = style in ("invented", "turned around")
        label = f"{style} (should drop)" if control else style
        print(f"  {label:28} {counts['dropped']:>5} of {total:>5} dropped ({share:.2%})")
        for key, n in counts.most_common():
            if key.startswith("why: ") and not control:
                print(f"      {n:>4}  {key[5:]}")


if __name__ == "__main__":
    main()
