"""`supportlens evaluate clusters|similar|intent` through the CLI, on the production embedding path."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from supportlens_cli.main import main
from supportlens.evaluation import clustering_metrics
from tests.conftest import shared_file

TOPICS = {
    "card_lost": ["I lost my card", "my card was stolen yesterday", "can't find my bank card anywhere",
                  "someone stole my wallet with the card", "card missing, please block it", "I think I lost my debit card"],
    "refund": ["I want a refund for my order", "please refund the money you charged", "how do I get my money back",
               "refund still not received", "when will my refund arrive", "you owe me a refund for the cancelled flight"],
    "wifi": ["the wifi keeps dropping", "internet connection is down again", "router not working, no internet",
             "my broadband is so slow today", "wifi disconnects every hour", "no internet since this morning"],
}


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def run(capsys, *args: str) -> dict:
    assert main(["evaluate", *args]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def files(tmp_path):
    train = [(t, label) for label, texts in TOPICS.items() for t in texts[:4]]
    test = [(t, label) for label, texts in TOPICS.items() for t in texts[4:]]
    return write(tmp_path / "train.csv", train), write(tmp_path / "test.csv", test), write(tmp_path / "all.csv", train + test)


def test_clustering_metrics_known_values():
    assert clustering_metrics(["a", "a", "b", "b"], [1, 1, 0, 0]) == {"nmi": 1.0, "ari": 1.0}
    swapped = clustering_metrics(["a", "a", "b", "b"], [0, 1, 0, 1])
    assert swapped["nmi"] == 0.0 and swapped["ari"] < 0


def test_evaluate_clusters_with_fixed_k(capsys, files):
    out = run(capsys, "clusters", "--data", str(files[2]), "--k", "3")
    assert out["k"] == 3 and out["true_k"] == 3 and out["n"] == 18
    assert 0.0 <= out["ari"] <= 1.0 and out["nmi"] >= 0.5  # three very different topics


def test_evaluate_clusters_prints_issues_buckets_and_outliers(capsys, tmp_path):
    rows = [(t, label) for label, texts in TOPICS.items() for t in texts] * 4
    rows += [("thank you so much!", "thanks"), ("thanks a lot, you are awesome", "thanks"), ("DM sent", "dm"),
             ("gracias por la ayuda con el pedido", "es"), ("hola, el pedido no llega todavía", "es")] * 3
    path = tmp_path / "mixed.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label", "company"])
        writer.writerows((t, label, "acme" if i % 2 else "globex") for i, (t, label) in enumerate(rows))
    out = run(capsys, "clusters", "--data", str(path))
    assert out["buckets"] == {"gratitude": 6, "language:es": 6, "follow-up": 3}
    assert out["clustered"] == 72 and 0 <= out["outlier_share"] <= 1 and out["k"] == len(out["issues"]) >= 2
    assert sum(i["size"] for i in out["issues"]) == 72 and out["largest_issue_share"] <= 0.5
    for issue in out["issues"]:
        assert issue["label"] and issue["examples"] and {c["company"] for c in issue["top_companies"]} <= {"acme", "globex"}
    assert out["nmi"] >= 0.6 and out["issues_only"]["nmi"] >= 0.5


def test_evaluate_similar_and_intent(capsys, files):
    train, test, _ = files
    similar = run(capsys, "similar", "--data", str(test), "--train", str(train))
    assert similar["accuracy_at_1"] >= 0.8 and similar["n"] == 6
    intent = run(capsys, "intent", "--data", str(test), "--train", str(train))
    assert intent["accuracy"] >= 0.8 and intent["classes"] == 3 and set(intent) >= {"accuracy", "macro_f1"}


def test_similar_without_train_is_a_clear_error(capsys, files):
    assert main(["evaluate", "similar", "--data", str(files[1])]) != 0
    assert "--train" in capsys.readouterr().err


@pytest.mark.shared_data
def test_banking77_through_the_cli(capsys, tmp_path):
    rows = list(csv.DictReader(shared_file("banking77", "train.csv").open()))
    text_key = "text" if "text" in rows[0] else next(iter(rows[0]))
    label_key = "label" if "label" in rows[0] else "category"
    train, test = [], []
    for r in rows:  # a fixed hash split: 1 in 5 texts is held out
        held = int(hashlib.sha256(r[text_key].encode()).hexdigest(), 16) % 5 == 0
        (test if held else train).append((r[text_key], r[label_key]))
    train_csv, test_csv = write(tmp_path / "train.csv", train), write(tmp_path / "test.csv", test)
    intent = run(capsys, "intent", "--data", str(test_csv), "--train", str(train_csv))
    similar = run(capsys, "similar", "--data", str(test_csv), "--train", str(train_csv))
    clusters = run(capsys, "clusters", "--data", str(test_csv))  # automatic k (silhouette above the size floor)
    print(json.dumps({"intent": intent, "similar": similar, "clusters": clusters}))
    # Floors a little under what was measured here (see README); targets are 0.93 / 0.92 / 0.80.
    assert intent["accuracy"] >= 0.89  # 0.913 measured (logistic regression on the embedding)
    assert similar["accuracy_at_1"] >= 0.82
    assert clusters["nmi"] >= 0.76 and 60 <= clusters["k"] <= 150  # 0.784 at k = 93 measured (0.744 at k = 60 before)
    assert clusters["outlier_share"] < 0.1 and clusters["largest_issue_share"] < 0.1
