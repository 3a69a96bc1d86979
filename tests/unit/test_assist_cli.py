"""What `supportlens classify` / `recommend` print for the answers a new user found confusing."""

from __future__ import annotations

import argparse

from supportlens_cli import assist as cli


def _answer(result):
    return {"model_version": "v1", "result": result}


def test_classify_of_a_bucket_says_the_rule_decided_not_a_similarity(monkeypatch, capsys):
    # "hello" printed "similarity 0.01, confidence 1.00 (0 nearest past tickets)"
    result = {"issue_id": "bucket-greeting", "label": "greeting", "kind": "bucket", "confident": True, "similarity": 0.01,
              "confidence": 1.0, "threshold": 0.5, "neighbours": 0, "runner_up": None, "nearest": None, "by_rule": True}
    monkeypatch.setattr(cli, "_run", lambda args, request: _answer(result))
    assert cli.cmd_classify(argparse.Namespace(text="hello", json=False, stack=None)) == 0
    out = capsys.readouterr().out
    assert "the greeting rule matched" in out and "similarity" not in out and "confidence" not in out


def test_recommend_says_when_the_reply_is_another_companys(monkeypatch, capsys):
    # `recommend --company parcelco` returned UPSHelp's reply without a word
    result = {"reply": "Sorry! Please DM us the tracking number.", "company": "UPSHelp", "source_ticket_id": "t1",
              "reply_ticket_id": "r1", "similarity": 0.8, "agreement": 0.5, "score": 0.7, "supporting_ticket_ids": ["t1"],
              "alternatives": [], "rewritten": False, "same_company": False}
    monkeypatch.setattr(cli, "_run", lambda args, request: _answer(result))
    assert cli.cmd_recommend(argparse.Namespace(text="my parcel is lost", company="parcelco", json=False, stack=None)) == 0
    out = capsys.readouterr().out
    assert "no reply of parcelco was similar enough" in out and "UPSHelp" in out
    monkeypatch.setattr(cli, "_run", lambda args, request: _answer({**result, "same_company": True, "company": "parcelco"}))
    cli.cmd_recommend(argparse.Namespace(text="my parcel is lost", company="parcelco", json=False, stack=None))
    assert "similar enough" not in capsys.readouterr().out
