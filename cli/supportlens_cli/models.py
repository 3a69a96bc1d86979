"""`supportlens evaluate` and `supportlens train`: measure and retrain the text models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _failed(command: str, exc: Exception) -> int:
    """The error on stderr, with how to name other columns when the CSV lacks text/label; exit status 1."""
    hint = "; name your columns with --text-column and --label-column (e.g. --label-column category)"
    print(f"supportlens {command}: {exc}{hint if 'needs columns' in str(exc) else ''}", file=sys.stderr)
    return 1


def _column_options(parser: Any) -> None:
    parser.add_argument("--text-column", default="text", help="the CSV column holding the text (default: text)")
    parser.add_argument("--label-column", default="label",
                        help="the CSV column holding the label (default: label; Banking77's is category, the airline set's negativereason)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from supportlens.evaluation import EvalOptions, EvaluationError, evaluate, read_labelled_csv

    try:
        data = read_labelled_csv(args.data, args.text_column, args.label_column)
        train = read_labelled_csv(args.train, args.text_column, args.label_column) if args.train else None
        result = evaluate(args.task, data, EvalOptions(train=train, k=args.k))
    except (EvaluationError, ValueError) as exc:
        return _failed("evaluate", exc)
    print(json.dumps(result))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from supportlens.evaluation import EvaluationError, normalise_labels, read_labelled_csv
    from supportlens.training.cli import train_from_labelled, write_pointer

    version = args.version or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out / args.task / version
    try:
        data = read_labelled_csv(args.data, args.text_column, args.label_column)
        model, info = train_from_labelled(args.task, data.texts, normalise_labels(args.task, data.labels), out_dir, version,
                                          use_profanity_check=not args.no_profanity_check)
    except (EvaluationError, ValueError) as exc:
        return _failed("train", exc)
    write_pointer(args.out, args.task, version)
    result: dict[str, Any] = {"task": args.task, "version": model.version, "path": str(out_dir), "rows": len(data.texts),
                              "validation": info.get("validation")}
    if args.upload or args.stack:
        from .client import resolve_outputs

        from supportlens.logic.train import publish_model

        outputs = resolve_outputs(args.stack)
        result["uploaded"] = publish_model(outputs["DataBucketName"], out_dir, args.task, version, {"source": str(args.data)})
    print(json.dumps(result))
    return 0


def add_model_commands(sub: Any) -> None:
    ev = sub.add_parser("evaluate", help="score a labelled CSV (text,label) with the production code path; prints one JSON object")
    ev.add_argument("task", help="sentiment | abuse | clusters | similar (needs --train) | intent (needs --train)")
    ev.add_argument("--data", required=True, type=Path, help="CSV with columns text,label")
    ev.add_argument("--train", type=Path, help="sentiment/abuse: train on this CSV first; similar: the texts searched; intent: the classifier's training set")
    ev.add_argument("--k", type=int, help="number of clusters / neighbours (tasks that use it)")
    _column_options(ev)
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser("train", help="train a sentiment, abuse or intent model on a labelled CSV (text,label) into a versioned directory")
    tr.add_argument("task", choices=["sentiment", "abuse", "intent"])
    tr.add_argument("--data", required=True, type=Path, help="CSV with columns text,label")
    tr.add_argument("--out", type=Path, default=Path("out/models"), help="writes OUT/<task>/<version>/ and OUT/<task>/latest.json")
    tr.add_argument("--version", help="default: UTC timestamp")
    tr.add_argument("--no-profanity-check", action="store_true", help="abuse: do not stack alt-profanity-check's model")
    tr.add_argument("--upload", action="store_true", help="also upload to the local cloud's bucket under models/<task>/<version>/")
    tr.add_argument("--stack", help="upload to this deployed stack's bucket instead")
    _column_options(tr)
    tr.set_defaults(func=cmd_train)
