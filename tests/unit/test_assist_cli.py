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


def test_classify_says_what_similarity_and_confidence_measure(monkeypatch, capsys):
    # "similarity 0.62, confidence 0.30" left an agent asking which one to trust
    nearest = {"issue_id": "issue-billing", "label": "charged twice"}
    result = {"issue_id": None, "label": "no confident match", "kind": "issue", "confident": False, "similarity": 0.62,
              "confidence": 0.3, "threshold": 0.5, "neighbours": 10, "runner_up": None, "nearest": nearest}
    monkeypatch.setattr(cli, "_run", lambda args, request: _answer(result))
    assert cli.cmd_classify(argparse.Namespace(text="billing question", json=False, stack=None)) == 0
    out = capsys.readouterr().out
    assert out.startswith("no confident match (below 0.50); nearest issue-billing  charged twice")
    assert "similarity 0.62 (cosine to the issue's centre)" in out and "confidence 0.30 (how many of the 10 nearest" in out
    assert "below 0.50: no confident match" in out


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


def test_an_unknown_company_is_named_as_unknown(monkeypatch, capsys):
    # `recommend --company NoSuchCo` said "no reply similar enough", `similar` printed nothing at all
    note = "no ticket of 'NoSuchCo' is in the index (companies are matched by name, case aside, e.g. AmazonHelp; 41 known)"
    result = {"reply": "Sorry! Please DM us the tracking number.", "company": "UPSHelp", "source_ticket_id": "t1",
              "reply_ticket_id": "r1", "similarity": 0.8, "agreement": 0.5, "score": 0.7, "supporting_ticket_ids": ["t1"],
              "alternatives": [], "rewritten": False, "same_company": False, "company_note": note}
    monkeypatch.setattr(cli, "_run", lambda args, request: _answer(result))
    cli.cmd_recommend(argparse.Namespace(text="my parcel is lost", company="NoSuchCo", json=False, stack=None))
    out = capsys.readouterr().out
    assert "note: no ticket of 'NoSuchCo'" in out and "UPSHelp" in out and "no reply of NoSuchCo was similar enough" not in out
    monkeypatch.setattr(cli, "_run", lambda args, request: _answer({"matches": [], "company_note": note}))
    cli.cmd_similar(argparse.Namespace(text="my parcel is lost", company="NoSuchCo", k=5, json=False, stack=None))
    assert capsys.readouterr().out.startswith("note: no ticket of 'NoSuchCo'")
