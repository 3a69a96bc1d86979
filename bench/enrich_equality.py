"""Old == new for the enrichment CPU path, on real texts (issue 14 part 4).

    python -m bench.enrich_equality dump OUT.npz    # with PYTHONPATH at one checkout's layer
    python -m bench.enrich_equality compare A.npz B.npz

`dump` enriches the shared corpora's texts (TWCS, Banking77 train, airline, Endava, Davidson,
Bitext; raw, as the pipeline sees them) in batches of 100 with a fixed `now`, and stores per
text: the stored item (masked text, clean text, PII kinds, language, sentiment label and score,
abuse score, escalation, entities), the unrounded model probabilities (sentiment's three,
abuse's one), VADER's four scores and the embedding vector. `compare` says where two dumps differ:
strings and labels must be equal, floats equal (it prints the largest difference of each kind).
Run it against a checkout of main to show that a speed-up changed nothing.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# (file, text column(s)); Endava's title and body are one ticket, as its source mapping makes them
CORPORA = (
    ("twcs/train.csv", ("text",)),
    ("banking77/train.csv", ("text",)),
    ("airline_sentiment/train.csv", ("text",)),
    ("support_tickets_endava/train.csv", ("title", "body")),
    ("offensive/train.csv", ("tweet",)),
    ("customer_support_bitext/train.csv", ("instruction",)),
)
NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)
ITEM_FIELDS = ("text", "clean_text", "pii", "language", "sentiment", "sentiment_score", "abuse_score", "abusive",
               "escalation", "entities")


def corpus_texts(limit_per_file: int | None = None) -> list[tuple[str, str]]:
    """(corpus name, text) for every non-blank text of the shared corpora present."""
    out: list[tuple[str, str]] = []
    csv.field_size_limit(10_000_000)
    for name, columns in CORPORA:
        path = DATA / name
        if not path.exists():
            continue
        with path.open(newline="", encoding="utf-8") as fh:
            rows = [" ".join(r.get(c) or "" for c in columns).strip() for r in csv.DictReader(fh)]
        rows = [t for t in rows if t.strip()][:limit_per_file]
        out += [(name.split("/")[0], t) for t in rows]
    return out


def dump(out_path: str, limit_per_file: int | None = None) -> None:
    from supportlens.domain import models, scoring
    from supportlens.domain.enrichment import enrich
    from supportlens.domain.tickets import Ticket

    texts = corpus_texts(limit_per_file)
    tickets = [Ticket(ticket_id=f"t{i}", source=src, created_at=NOW, text=t[:100_000]) for i, (src, t) in enumerate(texts)]
    items, vectors = [], []
    for i in range(0, len(tickets), 100):
        batch = enrich(tickets[i : i + 100], now=NOW)
        items += [{k: item.get(k) for k in ITEM_FIELDS} for item in batch.items]
        vectors.append(batch.vectors)
    cleaned = [item["clean_text"] or item["text"] for item in items]
    sentiment = models.default_model("sentiment")
    abuse = models.default_model("abuse")
    probas_s = np.vstack([sentiment.proba(cleaned[i : i + 100]) for i in range(0, len(cleaned), 100)])
    probas_a = np.concatenate([abuse.proba(cleaned[i : i + 100]) for i in range(0, len(cleaned), 100)])
    vader = models.vader_features([models.clean(t, sentiment.options) for t in cleaned])
    np.savez_compressed(out_path, items=np.array([json.dumps(it, sort_keys=True) for it in items]),
                        vectors=np.vstack(vectors), sentiment_proba=probas_s, abuse_proba=probas_a, vader=vader,
                        escalation_raw=np.array([json.dumps(scoring.escalation(t)) for _, t in texts]))
    print(f"{len(items)} texts -> {out_path}")


def compare(a_path: str, b_path: str) -> int:
    a, b = np.load(a_path), np.load(b_path)
    bad = 0
    for key in ("items", "escalation_raw"):
        diff = np.flatnonzero(a[key] != b[key])
        print(f"{key}: {len(a[key])} rows, {len(diff)} differ")
        for i in diff[:5]:
            print("  ", i, a[key][i][:300], "\n   ", b[key][i][:300])
        bad += len(diff) + (a[key].shape != b[key].shape)
    for key in ("vectors", "sentiment_proba", "abuse_proba", "vader"):
        if a[key].shape != b[key].shape:
            print(f"{key}: shapes {a[key].shape} != {b[key].shape}")
            bad += 1
            continue
        delta = float(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64)).max()) if a[key].size else 0.0
        equal = int((a[key] == b[key]).all(axis=tuple(range(1, a[key].ndim))).sum()) if a[key].ndim > 1 else int((a[key] == b[key]).sum())
        print(f"{key}: {a[key].shape}, rows bit-equal {equal}/{len(a[key])}, max |difference| {delta:.3g}")
        bad += delta > 1e-12
    print("IDENTICAL" if not bad else f"DIFFERENT ({bad})")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "dump":
        dump(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
