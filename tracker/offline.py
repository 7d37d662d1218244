"""The offline claim detector: no API key, no network, no GPU.

Sentences come from syntok; each is scored by a small linear model (word and character
n-gram TF-IDF, multinomial logistic regression over ClaimBuster's three classes:
non-factual, unimportant factual, check-worthy factual) trained by
`python -m tracker.offline_train`. A sentence likely to be factual becomes a claim
(its quote is the sentence itself, exact offsets); its check-worthiness is the
probability of the check-worthy class. Claimant and claim type come from rules.

Inference is plain numpy over the exported vocabulary and weights, so the default
install needs neither scikit-learn nor PyTorch.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from tracker.sanitize import strip_bidi

if TYPE_CHECKING:
    from tracker.results import ExtractionResult

MODEL_FILE = "checkworthiness.npz"
MAX_SENTENCE_CHARS = 2_000  # a claim's longest text (ExtractedClaim)
_TOKEN = re.compile(r"(?u)\b\w+\b")
_DIGIT = re.compile(r"\d")
_RUNS_OF_SPACE = re.compile(r"\s\s+")


def preprocess(text: str) -> str:
    """What both training and scoring see: lower case, every digit as 0."""
    return _DIGIT.sub("0", text).lower()


def word_features(text: str) -> list[str]:
    """Unigrams and bigrams, as scikit-learn's word analyzer makes them."""
    tokens = _TOKEN.findall(text)
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def char_features(text: str, low: int = 2, high: int = 5) -> list[str]:
    """Character n-grams inside word boundaries, as scikit-learn's "char_wb" makes them."""
    grams: list[str] = []
    for word in _RUNS_OF_SPACE.sub(" ", text).split():
        grams += _word_grams(word, low, high)
    return grams


# Words up to this long have their n-grams and ids remembered (not a page-long "word").
_REMEMBERED_WORD_CHARS = 40


def _word_grams(word: str, low: int, high: int) -> tuple[str, ...]:
    """One word's n-grams; a word's are remembered: the same words recur in every
    sentence scored."""
    if len(word) > _REMEMBERED_WORD_CHARS:
        return _grams_of(word, low, high)
    return _remembered_grams(word, low, high)


def _grams_of(word: str, low: int, high: int) -> tuple[str, ...]:
    word = f" {word} "
    grams: list[str] = []
    for n in range(low, high + 1):
        if len(word) <= n:  # the whole word, once, and no longer n-grams
            grams.append(word)
            break
        grams += [word[i : i + n] for i in range(len(word) - n + 1)]
    return tuple(grams)


_remembered_grams = lru_cache(maxsize=4096)(_grams_of)


@dataclass
class _Block:
    """One TF-IDF vectorizer: vocabulary, idf, and the model's weights for its features."""

    index: dict[str, int]
    idf: np.ndarray
    weights: np.ndarray  # (n_features, n_classes)

    def logits(self, features: list[str]) -> np.ndarray:
        # Counted and looked up in C (a generator over every n-gram was most of the cost);
        # ids keep the order of first occurrence, so the sums are the same as before.
        counts = Counter(features)
        ids = np.fromiter(map(self.index.get, counts, itertools.repeat(-1)), np.int64, len(counts))
        return self._logits(ids, counts.values())

    def id_logits(self, ids: list[int]) -> np.ndarray:
        """`logits` of the features with these ids (the known ones, in the text's order)."""
        counts = Counter(ids)
        return self._logits(np.fromiter(counts, np.int64, len(counts)), counts.values())

    def _logits(self, ids: np.ndarray, counts: Iterable[int]) -> np.ndarray:
        known = ids >= 0
        if not known.any():
            return np.zeros(self.weights.shape[1], dtype=np.float32)
        raw = np.fromiter(counts, np.float64, len(ids))[known]
        ids = ids[known]
        tf = (1 + np.log(raw)).astype(np.float32)  # as math.log would, then float32
        values = tf * self.idf[ids]
        values /= np.linalg.norm(values)
        return values @ self.weights[ids]


class CheckworthinessModel:
    """P(non-factual), P(unimportant factual), P(check-worthy factual) of a sentence."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.meta = json.loads(bytes(data["meta"]).decode())
            blocks = []
            for name in ("word", "char"):
                vocab = bytes(data[f"{name}_vocab"]).decode().split("\n")
                blocks.append(
                    _Block(
                        {term: i for i, term in enumerate(vocab)},
                        data[f"{name}_idf"].astype(np.float32),
                        data[f"{name}_coef"].astype(np.float32).T.copy(),
                    )
                )
            self.word, self.char = blocks
            self.intercept = data["intercept"].astype(np.float32)
        self._char_ids: dict[str, tuple[int, ...]] = {}
        self.version = hashlib.sha256(path.read_bytes()).hexdigest()
        self.claim_threshold: float = self.meta["factual_threshold"]
        self.checkworthy_threshold: float = self.meta["checkworthy_threshold"]

    def probabilities(self, sentences: list[str]) -> np.ndarray:
        rows = []
        for sentence in sentences:
            text = preprocess(sentence)
            logits = (
                self.word.logits(word_features(text))
                + self.char.id_logits(self.char_ids(text))
                + self.intercept
            )
            rows.append(logits)
        if not rows:
            return np.zeros((0, 3), dtype=np.float32)
        logits = np.vstack(rows)
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)

    def char_ids(self, text: str) -> list[int]:
        """The ids of `char_features(text)` in the vocabulary, unknown n-grams left out.
        Each word's are remembered: one look-up a word instead of ~20, in a vocabulary
        too large to stay in the CPU's caches between articles."""
        ids: list[int] = []
        for word in _RUNS_OF_SPACE.sub(" ", text).split():
            known = self._char_ids.get(word)
            if known is None:
                found = map(self.char.index.get, _word_grams(word, 2, 5))
                known = tuple(i for i in found if i is not None)
                if len(word) <= _REMEMBERED_WORD_CHARS:
                    if len(self._char_ids) >= 100_000:
                        self._char_ids.clear()
                    self._char_ids[word] = known
            ids += known
        return ids

    def checkworthiness(self, sentences: list[str]) -> np.ndarray:
        return self.probabilities(sentences)[:, 2]


def model_path() -> Path:
    return Path(str(resources.files("tracker.assets").joinpath(MODEL_FILE)))


@cache
def load_model(path: Path | None = None) -> CheckworthinessModel:
    return CheckworthinessModel(path or model_path())


# --- Sentences, claimants, claim types ------------------------------------------------


# syntok's own paragraph separator (syntok.segmenter.preprocess_with_offsets).
_PARAGRAPH_SEP = re.compile(r"\r?\n(?:\s*\r?\n)+")


def _paragraph_sentences(text: str) -> Iterator[list[tuple[int, int]]]:
    """Each paragraph's sentence spans, by syntok. Paragraphs are handed to syntok one at a
    time: its `analyze` pads every paragraph with as many spaces as its offset, which made a
    long file quadratic (1 MB: 7 s of 13 in padding)."""
    from syntok.segmenter import segment
    from syntok.tokenizer import Tokenizer

    tokenizer = Tokenizer(replace_not_contraction=False)
    offset = 0
    for separator in itertools.chain(_PARAGRAPH_SEP.finditer(text), [None]):
        end = separator.start() if separator else len(text)
        spans = []
        for piece_start, piece_end in _pieces(text, offset, end):
            piece = text[piece_start:piece_end]
            for sentence in segment(tokenizer.tokenize(piece)):
                start = piece_start + sentence[0].offset
                spans.append((start, piece_start + sentence[-1].offset + len(sentence[-1].value)))
        yield spans
        if separator:
            offset = separator.end()


MAX_PIECE_CHARS = 20_000  # syntok holds a token object per word of what it is given


def _pieces(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """text[start:end] in pieces syntok can take: a paragraph as it is, unless it is longer
    than MAX_PIECE_CHARS (a 10 MB file on one line took 2.3 GB), then cut after the last
    sentence end, else the last space, before the limit."""
    while end - start > MAX_PIECE_CHARS:
        window = text[start : start + MAX_PIECE_CHARS]
        cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "))
        cut = cut + 2 if cut > MAX_PIECE_CHARS // 2 else window.rfind(" ") + 1
        cut = cut if cut > 0 else MAX_PIECE_CHARS
        yield start, start + cut
        start += cut
    yield start, end


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence, by syntok, trimmed to its first and last token."""
    return [span for paragraph in _paragraph_sentences(text) for span in paragraph]


# Up to five capitalised words, joined by "of", "for", "the" ... in organisations' names.
_NAME = r"[A-Z][\w'’.-]*(?:\s+(?:(?:of|for|and|the|de|du|von|van|al)\s+)?[A-Z][\w'’.-]*){0,4}"
_SAYS = (
    r"(?:said|says|told|stated|states|warned|warns|added|argued|argues|claimed|claims|"
    r"announced|announces|insisted|insists|wrote|writes|noted|notes|declared|declares|"
    r"reported|reports|estimated|estimates|predicted|predicts)"
)
# "according to the state police": institutions are often named in lower case.
_INSTITUTION = (
    r"(?:the\s+)?(?:[a-z][\w-]*\s+){0,3}(?:police|officials|authorities|government|ministry|"
    r"department|agency|report|survey|study|data|figures|statistics|census|court|prosecutors|"
    r"researchers|analysts|experts|economists|scientists|poll|polls|estimates)\b"
)
_ACCORDING = re.compile(rf"\b(?i:according to) (?:the )?({_NAME}|{_INSTITUTION})")
_NAME_SAYS = re.compile(rf"({_NAME})\s+(?:has\s+|had\s+)?{_SAYS}\b")
# "..., said X": the speaker follows the verb (not after "told": "told Congress" names
# the listener).
_SAYS_NAME = re.compile(rf"\b(?!told\b){_SAYS}\s+({_NAME})")
_PRONOUN_SAYS = re.compile(rf"\b(?:he|she|they)\s+(?:has\s+|had\s+)?{_SAYS}\b", re.IGNORECASE)
_NOT_NAMES = {
    "The", "This", "That", "It", "But", "And", "In", "On", "A", "An", "We", "I", "If", "As",
    "So", "Yet", "Then", "When", "While", "After", "Before", "Just", "Now", "Still", "Also",
}  # fmt: skip
# A pronoun is not a name: "She said ..." takes the claimant of the sentence before.
_PRONOUNS = {"He", "She", "They", "You", "I", "We", "It", "Who", "One", "Someone", "Everyone"}


_TITLES = {
    "President", "Minister", "Ambassador", "Secretary", "Senator", "Governor", "Mayor",
    "Spokesman", "Spokeswoman", "Spokesperson", "Chairman", "Chairwoman", "Director",
    "Chief", "General", "Gen.", "Rep.", "Sen.", "Gov.", "Prime", "Chancellor", "King",
    "Queen", "Officer", "Commissioner", "Justice", "Judge", "CEO", "Professor", "Dr.",
}  # fmt: skip


def _clean_name(name: str) -> str | None:
    """The name without leading function words or job titles ("Foreign Minister X")."""
    words = name.split()
    while words and words[0] in _NOT_NAMES:
        words = words[1:]
    titled = [i for i, word in enumerate(words) if word in _TITLES]
    if titled and titled[-1] < len(words) - 1:
        words = words[titled[-1] + 1 :]
    name = " ".join(words).strip(" .,")
    if not name or name in _PRONOUNS:
        return None
    return name


def claimant_of(sentence: str, previous: str | None = None) -> str | None:
    """Who makes the claim, from attribution: "according to X", "X said", "said X";
    "he said" takes the claimant of the sentence before. None: the article asserts it."""
    sentence = strip_bidi(sentence)  # an override inside a name would hide the name
    for pattern in (_NAME_SAYS, _SAYS_NAME, _ACCORDING):
        match = pattern.search(sentence)
        if match and (name := _clean_name(match.group(1))):
            return name
    if previous and _PRONOUN_SAYS.search(sentence):
        return previous
    return None


_QUOTE_MARKS = re.compile(r"[\"“”«»]")
_NUMBER = re.compile(
    r"\d|\b(?:percent|per cent|million|billion|trillion|thousand|hundred|half|twice|"
    r"double|triple|dozens?|majority)\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(
    r"\b(?:will|would|could|might|may|shall|going to|expected to|plans? to|likely|if|unless)\b",
    re.IGNORECASE,
)
_CAUSAL = re.compile(
    r"\b(?:because|caused?|causes|due to|as a result|leads? to|led to|results? in|"
    r"resulted in|thanks to|blamed)\b",
    re.IGNORECASE,
)
_POSITION = re.compile(
    r"\b(?:should|must|support|supports|oppose|opposes|calls? for|called for|policy|"
    r"committed to|vowed|pledged|ruled out)\b",
    re.IGNORECASE,
)


def claim_type_of(sentence: str, claimant: str | None) -> str:
    """The kind of claim, from the sentence's wording (first rule that applies)."""
    if _QUOTE_MARKS.search(sentence) and claimant:
        return "quote_attribution"
    if _NUMBER.search(sentence):
        return "statistic"
    if _FUTURE.search(sentence):
        return "prediction"
    if _CAUSAL.search(sentence):
        return "causal"
    if _POSITION.search(sentence):
        return "position"
    if re.search(r"\b\w+ed\b|\b(?:was|were|did|had)\b", sentence):
        return "event"
    return "other"


_CAPTION = re.compile(
    r"^\(.*\)$|^In this (?:file )?(?:photo|image|picture)\b|\b(?:AP Photo|via AP|Getty Images|"
    r"Photo by|Photograph:|File photo)\b",
    re.IGNORECASE,
)


def is_caption(sentence: str) -> bool:
    """Photo captions and credits state facts nobody needs to check."""
    return bool(_CAPTION.search(sentence.strip()))


# A paragraph that is only a photo credit: "(AP Photo/Efrem Lukatsky)", "(Photo by X/Getty
# Images)", "(Reuters/Jane Doe)"; not "(Reporting by ...; Editing by ...)".
_CREDIT = re.compile(
    r"^[ \t]*\([^()\n]*(?:\bPhoto|\bPhotograph|\bImages\b|\bGetty\b|/)[^()\n]*\)[ \t]*$",
    re.MULTILINE,
)


_HEADING = re.compile(r"^[ \t]*([^\n]{1,120}?)[ \t]*$", re.MULTILINE)


def heading_spans(text: str) -> list[tuple[int, int]]:
    """Lines standing alone as a paragraph with no closing punctuation and at most 15
    words: headlines and titles ("State of the Union Address, 1996"), which the body
    restates in full sentences."""
    spans = []
    for line in _HEADING.finditer(text):
        start, end = line.span(1)
        alone = text[max(0, start - 2) : start].strip(" \t") in ("", "\n\n") and text[
            end : end + 2
        ].strip(" \t") in ("", "\n\n", "\n")
        words = line.group(1).split()
        if (
            alone
            and words
            and len(words) <= 15
            and not line.group(1).rstrip().endswith((".", "!", "?", "…", '"', "”", "’", ":"))
        ):
            spans.append((start, end))
    return spans


def caption_spans(text: str) -> list[tuple[int, int]]:
    """The paragraphs directly above a photo credit: captions, even with no credit words
    of their own ("Gutted cars following a night air raid ..., March 4, 2022.")."""
    spans = []
    for credit in _CREDIT.finditer(text):
        end = text.rfind("\n", 0, credit.start())
        while end > 0 and text[end - 1] in " \t\n\xa0":
            end -= 1
        above = text.rfind("\n\n", 0, end)
        start = above + 2 if above >= 0 else 0
        if end > start:
            spans.append((start, end))
    return spans


def _containment(spans: list[tuple[int, int]]) -> Callable[[int, int], bool]:
    """Whether (start, end) lies inside one of `spans`, in log time (checking every span
    for every sentence was quadratic in a long file with many headings)."""
    spans = sorted(spans)
    starts = [a for a, _ in spans]
    reach = list(itertools.accumulate((b for _, b in spans), max))

    def inside(start: int, end: int) -> bool:
        i = bisect.bisect_right(starts, start)
        return i > 0 and reach[i - 1] >= end

    return inside


# --- The extractor --------------------------------------------------------------------


def extract_offline(text: str, *, threshold: float | None = None) -> ExtractionResult:
    """Every sentence likely to be a factual claim, as a grounded claim."""
    from tracker.grounding import ArticleIndex
    from tracker.results import ExtractionResult, merge_claims
    from tracker.schemas import ExtractedClaim

    model = load_model()
    threshold = model.claim_threshold if threshold is None else threshold
    # A "sentence" of more than MAX_SENTENCE_CHARS (an unpunctuated page) is no claim.
    spans = [
        (a, b)
        for a, b in sentence_spans(text)
        if b - a <= MAX_SENTENCE_CHARS and len(text[a:b].split()) >= 4
    ]
    sentences = [text[a:b] for a, b in spans]
    probabilities = model.probabilities(sentences)
    article = ArticleIndex(text)
    inside_caption = _containment(caption_spans(text) + heading_spans(text))
    claims, previous = [], None
    for (start, end), sentence, (_, unimportant, checkworthy) in zip(
        spans, sentences, probabilities, strict=True
    ):
        claimant = claimant_of(sentence, previous)
        previous = claimant or previous
        if (
            unimportant + checkworthy < threshold
            or is_caption(sentence)
            or inside_caption(start, end)
        ):
            continue
        try:
            claim = ExtractedClaim.model_validate(
                {
                    "text": sentence,
                    "quote": sentence,
                    "claimant": claimant,
                    "claim_type": claim_type_of(sentence, claimant),
                    "checkworthiness": round(float(checkworthy), 4),
                    "offline_score": round(float(checkworthy), 4),
                },
                context={"article": article, "window": (start, end)},
            )
        except ValidationError:  # one odd sentence is not a claim; the article goes on
            continue
        claims.append(claim)
    return ExtractionResult(
        claims=merge_claims(claims),
        dropped=0,
        calls=[],
        model=f"offline-{model.version[:12]}",
        prompt_hash=model.version,
    )


def keep_checkworthy_paragraphs(text: str, threshold: float) -> list[tuple[int, int]]:
    """Spans of the paragraphs with at least one sentence scoring `threshold` or more:
    the rest need not be sent to a paid model (`--prefilter`)."""
    model = load_model()
    kept = []
    for spans in _paragraph_sentences(text):
        if not spans:
            continue
        scores = model.checkworthiness([text[a:b] for a, b in spans])
        if scores.max() >= threshold:
            kept.append((spans[0][0], spans[-1][1]))
    return kept


def with_second_opinion(result: ExtractionResult) -> ExtractionResult:
    """A model's claims, each with the offline score of its quote beside the model's own."""
    if result.claims:
        scores = load_model().checkworthiness([claim.quote for claim in result.claims])
        result.claims = [
            claim.model_copy(update={"offline_score": round(float(score), 4)})
            for claim, score in zip(result.claims, scores, strict=True)
        ]
    return result
