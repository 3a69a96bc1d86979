"""`supportlens evaluate` and `supportlens train` through the real CLI entry point (cli.main)."""

from __future__ import annotations

import csv
import json

import pytest

from supportlens import evaluation
from supportlens_cli import main as cli
from supportlens.domain import scoring
from supportlens.domain.models import TextModel
from tests.conftest import SAMPLE

SENTIMENT_ROWS = [
    ("Thank you so much, you were amazing and fixed it in minutes!", "positive"),
    ("Great service today, really appreciate the help", "positive"),
    ("love the new app update, works perfectly", "positive"),
    ("This is the worst service I have ever had, I hate it", "negative"),
    ("my flight was cancelled and nobody will answer the phone", "negative"),
    ("still waiting for my refund after 3 weeks, terrible", "negative"),
    ("what time does the store open on Sunday?", "neutral"),
    ("Do you ship to Canada", "neutral"),
    ("is the new phone available in blue", "neutral"),
    ("jane.doe@example.com can you check order AB12345", "neutral"),
]
ABUSE_ROWS = [
    ("you are a fucking idiot", "abusive"),
    ("shut up you stupid bitch", "abusive"),
    ("you worthless piece of shit", "abusive"),
    ("please help me reset my password", "not_abusive"),
    ("my package is late again, any update?", "not_abusive"),
    ("thanks for the quick reply", "not_abusive"),
    ("the app crashes when I log in", "not_abusive"),
    ("how do I change my delivery address", "not_abusive"),
]


def write_csv(path, rows, header=("text", "label")):
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(capsys, *argv) -> tuple[int, dict | None, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) <= 1, out
    return code, json.loads(lines[0]) if lines else None, err


def test_evaluate_sentiment_prints_one_json_object(tmp_path, capsys):
    data = write_csv(tmp_path / "s.csv", SENTIMENT_ROWS)
    code, result, _ = run(capsys, "evaluate", "sentiment", "--data", str(data))
    assert code == 0
    assert {"accuracy", "macro_f1", "per_class_f1", "confusion_matrix", "n", "model"} <= set(result)
    assert result["n"] == len(SENTIMENT_ROWS)
    assert set(result["per_class_f1"]) == {"negative", "neutral", "positive"}
    matrix = result["confusion_matrix"]
    assert sum(map(sum, matrix)) == len(SENTIMENT_ROWS)
    # the CLI goes through the production path: same predictions as scoring on cleaned, masked text
    inputs, _ = evaluation.production_texts([t for t, _ in SENTIMENT_ROWS])
    pred = [label for label, _ in scoring.sentiment_batch(inputs)]
    correct = sum(p == y for p, (_, y) in zip(pred, SENTIMENT_ROWS))
    assert result["accuracy"] == round(correct / len(SENTIMENT_ROWS), 4)
    assert result["accuracy"] >= 0.7  # obvious texts


def test_evaluate_abuse_reports_flag_metrics(tmp_path, capsys):
    data = write_csv(tmp_path / "a.csv", ABUSE_ROWS)
    code, result, _ = run(capsys, "evaluate", "abuse", "--data", str(data))
    assert code == 0
    assert {"precision", "recall", "f1", "macro_f1", "flag_rate"} <= set(result)
    flagged = sum(s >= scoring.ABUSE_FLAG_THRESHOLD for s in scoring.abuse_batch(evaluation.production_texts([t for t, _ in ABUSE_ROWS])[1]))
    assert result["flag_rate"] == round(flagged / len(ABUSE_ROWS), 4)
    assert result["recall"] == 1.0 and result["precision"] == 1.0


def test_evaluate_accepts_common_label_spellings(tmp_path, capsys):
    data = write_csv(tmp_path / "a.csv", [(t, "1" if y == "abusive" else "0") for t, y in ABUSE_ROWS])
    code, result, _ = run(capsys, "evaluate", "abuse", "--data", str(data))
    assert code == 0 and result["positives"] == 3


def test_evaluate_reads_the_columns_it_is_told(tmp_path, capsys):
    """A labelled set as it comes (Banking77: text,category): named on the command line, not renamed by hand."""
    data = write_csv(tmp_path / "c.csv", [(t, "yes" if y == "abusive" else "no") for t, y in ABUSE_ROWS], header=("body", "category"))
    code, result, err = run(capsys, "evaluate", "abuse", "--data", str(data))
    assert code == 1 and "--label-column" in err
    code, result, _ = run(capsys, "evaluate", "abuse", "--data", str(data), "--text-column", "body", "--label-column", "category")
    assert code == 0 and result["positives"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "nope", "--data", "{csv}"], "unknown task"),
        (["evaluate", "sentiment", "--data", "{bad}"], "needs columns"),
        (["evaluate", "sentiment", "--data", "{labels}"], "unknown sentiment labels"),
        (["evaluate", "sentiment", "--data", "{missing}"], "no such file"),
    ],
)
def test_evaluate_rejects_bad_input(tmp_path, capsys, argv, message):
    paths = {
        "csv": write_csv(tmp_path / "s.csv", SENTIMENT_ROWS),
        "bad": write_csv(tmp_path / "b.csv", [("x", "y")], header=("body", "label")),
        "labels": write_csv(tmp_path / "l.csv", [("x", "happy")]),
        "missing": tmp_path / "missing.csv",
    }
    code, result, err = run(capsys, *[a.format(**{k: str(v) for k, v in paths.items()}) for a in argv])
    assert code == 1 and result is None
    assert message in err


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        return [r["text"] for r in csv.DictReader(fh) if r["inbound"] == "True"][:600]


def test_train_sentiment_writes_a_loadable_versioned_model(tmp_path, capsys, sample_texts):
    rows = [(t, scoring.vader_label(t)) for t in sample_texts]
    data = write_csv(tmp_path / "train.csv", rows)
    code, result, err = run(capsys, "train", "sentiment", "--data", str(data), "--out", str(tmp_path / "models"), "--version", "v1")
    assert code == 0, err
    path = tmp_path / "models" / "sentiment" / "v1"
    assert result["path"] == str(path) and result["version"] == "v1"
    assert json.loads((tmp_path / "models" / "sentiment" / "latest.json").read_text())["version"] == "v1"
    model = TextModel.load(path)
    assert model.classes == ["negative", "neutral", "positive"]
    # it learned the labels it was given: agrees with them on most training rows
    pred = model.predict([t for t, _ in rows])
    assert sum(p == y for p, (_, y) in zip(pred, rows)) / len(rows) > 0.8
    label, _ = scoring.sentiment("thank you, great help", model=model)
    assert label == "positive"


def test_train_abuse_then_evaluate_with_train_file(tmp_path, capsys, sample_texts):
    insults = ["idiot", "moron", "stupid bitch", "fucking idiot", "piece of shit", "dumbass", "asshole", "retard"]
    abusive = [f"{lead} {word}" for lead in ("you are a", "shut up you", "listen here you", "go away you", "what a")
               for word in insults]
    rows = [(t, "not_abusive") for t in sample_texts[:300]] + [(t, "abusive") for t in abusive]
    data = write_csv(tmp_path / "train.csv", rows)
    code, result, err = run(capsys, "train", "abuse", "--data", str(data), "--out", str(tmp_path / "m"), "--no-profanity-check")
    assert code == 0, err
    model = TextModel.load(result["path"])
    assert len(model.components) == 1 and model.classes == ["not_abusive", "abusive"]
    assert scoring.abuse_score("you are an asshole", model=model) >= scoring.ABUSE_FLAG_THRESHOLD
    assert scoring.abuse_score("please reset my password", model=model) < scoring.ABUSE_FLAG_THRESHOLD
    test = write_csv(tmp_path / "test.csv", ABUSE_ROWS)
    code, result, _ = run(capsys, "evaluate", "abuse", "--data", str(test), "--train", str(data))
    assert code == 0 and result["n"] == len(ABUSE_ROWS) and result["model"] != scoring.model_version("abuse")


def test_publish_model_puts_versioned_files_and_pointer(tmp_path, monkeypatch):
    moto = pytest.importorskip("moto")
    from supportlens.adapters import aws
    from supportlens.logic.train import publish_model

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    model_dir = tmp_path / "abuse" / "v9"
    model_dir.mkdir(parents=True)
    for name in ("model.json", "vocab.json", "arrays.npz"):
        (model_dir / name).write_bytes(name.encode())
    aws.client.cache_clear()
    try:
        with moto.mock_aws():
            s3 = aws.client("s3")
            s3.create_bucket(Bucket="models-test-bucket")
            keys = publish_model("models-test-bucket", model_dir, "abuse", "v9")
            assert keys[-1] == "models/abuse/latest.json"
            listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="models-test-bucket", Prefix="models/")["Contents"])
            assert listed == sorted(keys)
            pointer = json.loads(s3.get_object(Bucket="models-test-bucket", Key="models/abuse/latest.json")["Body"].read())
            assert pointer["prefix"] == "models/abuse/v9/" and sorted(pointer["files"]) == ["arrays.npz", "model.json", "vocab.json"]
            assert s3.get_object(Bucket="models-test-bucket", Key="models/abuse/v9/vocab.json")["Body"].read() == b"vocab.json"
    finally:
        aws.client.cache_clear()
