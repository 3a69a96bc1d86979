"""`python -m supportlens.training [--data DIR] [--out DIR] [--only sentiment|abuse]`: retrain the shipped models.

Reproducible: fixed hash splits and seeds. Writes <out>/<task>/{model.json, vocab.json, arrays.npz,
MODEL_CARD_<task>.md} and prints the validation and held-out test metrics.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import numpy as np

from .. import evaluation
from ..domain import models, scoring
from . import data as datasets
from .recipes import train_abuse, train_sentiment

VERSION = "2026-11-23"
DEFAULT_DATA = Path(__file__).resolve().parents[5] / ".." / "shared" / "data"


def _size(path: Path) -> str:
    return f"{sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6:.2f} MB"


def sentiment(data_dir: Path, out: Path) -> dict:
    labelled = datasets.airline_sentiment(data_dir)
    train, val, test = (labelled.subset(s) for s in datasets.SPLITS)
    t0 = time.time()
    model, info = train_sentiment(train, val, out / "sentiment", meta={"version": VERSION, "trained_on": "airline_sentiment"})
    inputs, _ = evaluation.production_texts(test.texts)
    pred = [label for label, _ in scoring.sentiment_batch(inputs, model=model)]
    test_metrics = evaluation.sentiment_metrics(test.labels, pred, model.classes)
    vader = [scoring.vader_label(t) for t in inputs]
    baseline = evaluation.sentiment_metrics(test.labels, vader, model.classes)["macro_f1"]
    report = {"task": "sentiment", "validation": info["validation"], "test": test_metrics, "test_vader_macro_f1": baseline,
              "train_seconds": round(time.time() - t0, 1), "size": _size(out / "sentiment"), "training": info}
    write_card(out / "sentiment", "sentiment", report, SENTIMENT_CARD)
    return report


def abuse(data_dir: Path, out: Path) -> dict:
    labelled = datasets.abuse(data_dir)
    train, val, test = (labelled.subset(s) for s in datasets.SPLITS)
    t0 = time.time()
    model, info = train_abuse(train, val, out / "abuse", meta={"version": VERSION, "trained_on": "davidson + airline + twcs customer tweets"})
    report = {"task": "abuse", "validation": info["validation"], "train_seconds": 0.0, "training": info, "test": {}}
    for source in ("davidson", "airline", "twcs"):
        part = test.subset("test", source)
        _, inputs = evaluation.production_texts(part.texts)
        scores = scoring.abuse_batch(inputs, model=model)
        pred = ["abusive" if s >= scoring.ABUSE_FLAG_THRESHOLD else "not_abusive" for s in scores]
        report["test"][source] = evaluation.abuse_metrics(part.labels, pred)
    report["train_seconds"] = round(time.time() - t0, 1)
    report["size"] = _size(out / "abuse")
    write_card(out / "abuse", "abuse", report, ABUSE_CARD)
    return report


SENTIMENT_CARD = """\
# Model card: sentiment ({version})

**Task.** Three-way sentiment of a customer message: `negative`, `neutral`, `positive`.
`supportlens.domain.scoring.sentiment()` returns the label and a score in [-1, 1]
(P(positive) - P(negative)).

**Model.** TF-IDF word 1-3-grams (negation marking: words after "not/no/never/n't" up to
punctuation get a `neg_` prefix) + TF-IDF char_wb 2-5-grams (sublinear tf, min_df 2) + VADER's
neg/neu/pos/compound scores -> multinomial logistic regression (C={C}, balanced classes, rows
weighted by annotator confidence^{confidence_power}); per-class biases {class_bias} tuned for
macro-F1 on the validation split; refit on train + validation. Runs in numpy from `model.json`,
`vocab.json`, `arrays.npz` (no pickle, no scikit-learn at run time). Size: {size}.

**Data.** Twitter US Airline Sentiment (CrowdFlower / Kaggle, **CC BY-NC-SA 4.0 — non-commercial**),
the rows in `../shared/data/airline_sentiment`, split by `sha256("supportlens-split:airline:" + tweet_id)`:
70 % train ({train_rows} rows), 15 % validation ({validation_rows}), 15 % test ({test_n}, never used
for any choice). Because of the data licence, this model is for non-commercial use; retrain it on
your own labelled data (`supportlens train sentiment --data FILE.csv`) for commercial use.

**Metrics** (computed through the production path: clean text, mask PII, `scoring.sentiment_batch`).

| split | accuracy | macro-F1 | F1 negative / neutral / positive |
|---|---|---|---|
| validation (train-only fit; biases tuned here) | {val_acc} | {val_f1} | {val_pc} |
| test (held out) | {test_acc} | {test_f1} | {test_pc} |

VADER alone on the same test rows: macro-F1 {vader}. The project's target (test macro-F1 >= 0.80)
is {target_note}. Test confusion matrix (rows true, columns
predicted, order negative/neutral/positive): {test_cm}.

**Limits.** Trained on February-2015 tweets about six US airlines: vocabulary and topics are
airline-specific; sarcasm and mixed messages are often wrong; English only.

Date: {version}. Retrain with `make models`.
"""

ABUSE_CARD = """\
# Model card: abuse ({version})

**Task.** Is a customer message abusive (insults, slurs, hate, aggressive profanity)?
`supportlens.domain.scoring.abuse_score()` returns a score in [0, 1]; a message is flagged at
`ABUSE_FLAG_THRESHOLD` = {flag} (the model's probability threshold {threshold} is mapped to it
monotonically). An explicit threat ("kill you") always scores >= 0.9 (rule).

**Model.** Two components stacked by a logistic regression on their log-odds (weights
{combine}, fitted on the validation split):
1. `abuse_lr`: TF-IDF word 1-2-grams + char_wb 2-5-grams (sublinear tf, min_df 2) -> logistic
   regression (C={C}), trained on Davidson et al. tweets (hate speech or offensive = abusive,
   neither = not abusive) plus ordinary support tweets (airline tweets, TWCS customer tweets) as
   not-abusive examples from the support domain.
2. `profanity_check`: the model shipped in `alt-profanity-check` {pc_version} (PyPI, **MIT**, trained by
   its authors on Davidson et al. and Wikipedia toxic comments: TF-IDF + LinearSVC with sigmoid
   calibration, 5 folds), exported to arrays at build time.
The threshold is the lowest one whose abusive-class F1 on validation is within 0.005 of the best,
among those flagging at most {budget:.0%} of validation support tweets (the flag budget is spent on recall). Runs in numpy from `model.json`, `vocab.json`, `arrays.npz` (no pickle, no
scikit-learn at run time). Size: {size}.

**Data.** `../shared/data/offensive` (Davidson et al., ICWSM 2017, **MIT**), `airline_sentiment`
and `twcs` (**CC BY-NC-SA 4.0 — non-commercial**) split by `sha256("supportlens-split:" + key)`:
70 % train ({train_rows} rows), 15 % validation ({validation_rows}), 15 % test (never used for
any choice). The support-domain negatives are non-commercial data: retrain without them, or on
your own data (`supportlens train abuse --data FILE.csv`), for commercial use.

**Metrics** (test rows through the production path: clean text, mask PII, `scoring.abuse_batch`,
flag at {flag}).

| test set | n | precision | recall | F1 (abusive) | macro-F1 | flag rate |
|---|---|---|---|---|---|---|
{test_rows}

Validation (all sources): F1 {val_f1}, macro-F1 {val_macro}; support flag rate {val_flag}.

**Caveats.** alt-profanity-check was trained on the whole Davidson dataset, so Davidson test
rows may be in its training data: the Davidson figures are optimistic. No OLID data is available
here, so OLID-style quality was not measured. Davidson's "offensive" class is dominated by a few
slurs and words; expect misses on abuse phrased without them, and flags on quoted or reclaimed
slurs. English only.

Date: {version}. Retrain with `make models`.
"""


def _installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def write_card(path: Path, task: str, report: dict, template: str) -> None:
    info = report["training"]
    model = models.TextModel.load(path)
    if task == "sentiment":
        val, test = report["validation"], report["test"]
        text = template.format(
            version=VERSION, size=report["size"], C=info["C"], confidence_power=info["confidence_power"],
            class_bias=[round(b, 2) for b in info["class_bias"]], train_rows=info["train_rows"], validation_rows=info["validation_rows"],
            test_n=test["n"], val_acc=val["accuracy"], val_f1=val["macro_f1"], val_pc=" / ".join(str(v) for v in val["per_class_f1"].values()),
            test_acc=test["accuracy"], test_f1=test["macro_f1"], test_pc=" / ".join(str(v) for v in test["per_class_f1"].values()),
            vader=report["test_vader_macro_f1"], test_cm=test["confusion_matrix"],
            target_note="met" if test["macro_f1"] >= 0.80 else "NOT met by this linear model",
        )
    else:
        rows = []
        for source, m in report["test"].items():
            if m["positives"]:
                rows.append(f"| {source} | {m['n']} | {m['precision']} | {m['recall']} | {m['f1']} | {m['macro_f1']} | {m['flag_rate']} |")
            else:  # ordinary support tweets: only the flag rate (false alarms) is meaningful
                rows.append(f"| {source} (all not abusive) | {m['n']} | - | - | - | - | {m['flag_rate']} |")
        combine = model.combine["weights"] if model.combine else "n/a"
        text = template.format(
            version=VERSION, pc_version=_installed_version("alt-profanity-check"), size=report["size"], flag=scoring.ABUSE_FLAG_THRESHOLD, threshold=model.threshold,
            combine=[round(w, 3) for w in combine] if combine != "n/a" else combine, C=info["C"], budget=info["max_support_flag_rate"],
            train_rows=info["train_rows"], validation_rows=info["validation_rows"], test_rows="\n".join(rows),
            val_f1=info["validation"]["f1"], val_macro=info["validation"]["macro_f1"], val_flag=info.get("validation_support_flag_rate"),
        )
    (path / f"MODEL_CARD_{task}.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supportlens.training", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA.resolve())
    parser.add_argument("--out", type=Path, default=models.MODELS_DIR)
    parser.add_argument("--only", choices=["sentiment", "abuse"])
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no training data at {args.data} (pass --data DIR)", file=sys.stderr)
        return 1
    np.random.seed(0)
    for task, fn in (("sentiment", sentiment), ("abuse", abuse)):
        if args.only in (None, task):
            report = fn(args.data, args.out)
            summary = {k: v for k, v in report.items() if k != "training"}
            print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
