"""Train the offline check-worthiness model from ClaimBuster's crowdsourced sentences.

    pip install -e ".[train]"
    python -m tracker.offline_train [--data ../shared/datasets] [--out tracker/assets/...]

Three classes (ClaimBuster's Verdict -1, 0, 1: non-factual, unimportant factual,
check-worthy factual). The two decision thresholds (a claim at all; check-worthy) are
chosen by 3-fold cross-validation on the training file itself, never on a test set.
The result is exported as plain arrays and checked to score exactly as scikit-learn does.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from tracker.offline import CheckworthinessModel, model_path, preprocess

THRESHOLDS = [round(t, 2) for t in np.arange(0.2, 0.65, 0.05)]
C = 1.0  # chosen by 3-fold cross-validation over {1, 4} x class weights {none, balanced}


def _vectorizers():
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(
        preprocessor=preprocess,
        token_pattern=r"(?u)\b\w+\b",
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
        max_features=50_000,
        dtype=np.float32,
    )
    char = TfidfVectorizer(
        preprocessor=preprocess,
        analyzer="char_wb",
        ngram_range=(2, 5),
        min_df=3,
        sublinear_tf=True,
        max_features=60_000,
        dtype=np.float32,
    )
    return word, char


def _fit(texts: list[str], labels: np.ndarray):
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    word, char = _vectorizers()
    features = hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=C, max_iter=3000).fit(features, labels)
    return word, char, model


def _predict(word, char, model, texts: list[str]) -> np.ndarray:
    from scipy.sparse import hstack

    return model.predict_proba(hstack([word.transform(texts), char.transform(texts)]).tocsr())


def _best_thresholds(texts: list[str], labels: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    factual, checkworthy = {t: [] for t in THRESHOLDS}, {t: [] for t in THRESHOLDS}
    array = np.array(texts, dtype=object)
    for train, test in folds.split(array, labels):
        word, char, model = _fit(list(array[train]), labels[train])
        p = _predict(word, char, model, list(array[test]))
        for t in THRESHOLDS:
            factual[t].append(f1_score(labels[test] >= 1, p[:, 1] + p[:, 2] >= t))
            checkworthy[t].append(f1_score(labels[test] == 2, p[:, 2] >= t))
        print(f"  fold done ({len(train)} sentences)", file=sys.stderr)
    best = max(THRESHOLDS, key=lambda t: np.mean(factual[t]))
    best_cw = max(THRESHOLDS, key=lambda t: np.mean(checkworthy[t]))
    print(
        f"cross-validated F1: claim {np.mean(factual[best]):.3f} at {best}, "
        f"check-worthy {np.mean(checkworthy[best_cw]):.3f} at {best_cw}",
        file=sys.stderr,
    )
    return float(best), float(best_cw)


def export(word, char, model, out: Path, meta: dict) -> None:
    n_word = len(word.vocabulary_)
    word_terms = sorted(word.vocabulary_, key=word.vocabulary_.get)
    char_terms = sorted(char.vocabulary_, key=char.vocabulary_.get)
    coef = model.coef_.astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        word_vocab=np.frombuffer("\n".join(word_terms).encode(), dtype=np.uint8),
        char_vocab=np.frombuffer("\n".join(char_terms).encode(), dtype=np.uint8),
        word_idf=word.idf_.astype(np.float32),
        char_idf=char.idf_.astype(np.float32),
        word_coef=coef[:, :n_word],
        char_coef=coef[:, n_word:],
        intercept=model.intercept_.astype(np.float32),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=model_path())
    args = parser.parse_args()
    source = args.data / "claimbuster" / "crowdsourced.csv"
    if not source.exists():
        sys.exit(f"training data not found: {source} (see ../shared/datasets/README.md)")
    with source.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [row["Text"] for row in rows]
    labels = np.array([int(row["Verdict"]) + 1 for row in rows])
    print(f"{len(texts)} sentences from {source}", file=sys.stderr)
    factual_t, checkworthy_t = _best_thresholds(texts, labels)
    word, char, model = _fit(texts, labels)
    meta = {
        "classes": ["non_factual", "unimportant_factual", "checkworthy_factual"],
        "trained_on": "ClaimBuster crowdsourced.csv (Arslan et al., ICWSM 2020)",
        "sentences": len(texts),
        "C": C,
        "factual_threshold": factual_t,
        "checkworthy_threshold": checkworthy_t,
    }
    export(word, char, model, args.out, meta)
    # The exported model must score exactly as scikit-learn does.
    sample = texts[:2000]
    ours = CheckworthinessModel(args.out).probabilities(sample)
    theirs = _predict(word, char, model, sample)
    gap = float(np.abs(ours - theirs).max())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB); max gap {gap:.2e}")
    if gap > 1e-4:
        sys.exit("the exported model does not match scikit-learn's scores")


if __name__ == "__main__":
    main()
