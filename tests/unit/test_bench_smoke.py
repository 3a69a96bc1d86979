"""`make bench` cannot rot: the harness runs end to end in --quick mode (timings are never asserted)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import gen, run
from tests.conftest import ROOT, SHARED_DATA

QUICK_LOCAL = ["enrich", "banking77", "ingest_speed", "ingest_memory", "cluster_100k", "cluster_1m", "cluster_1m_flat", "cold_start", "report"]


def bench(*args: str, timeout: float = 900) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-m", "bench.run", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1]), proc.stderr


def assert_measured(result: dict, key: str) -> None:
    value = result[key]
    if isinstance(value, dict):
        assert "error" not in value, f"{key}: {value['error']}"
        assert value and all(isinstance(v, (int, float, dict)) for v in value.values()), value
    else:
        assert isinstance(value, (int, float)) and value > 0, (key, value)


def test_quick_run_measures_every_local_key():
    result, stderr = bench("--quick", "--only", ",".join(QUICK_LOCAL))
    keys = [k for m in run.MEASUREMENTS if m.name in QUICK_LOCAL for k in m.keys]
    for key in keys:
        if key == "embedding_nmi_banking77" and not (SHARED_DATA / "banking77" / "train.csv").exists():
            assert "needs" in result[key]["error"]
            continue
        assert_measured(result, key)
    assert set(result) == set(keys) | {"meta", "details"}  # --only runs only what was asked
    assert result["meta"]["quick"] is True
    assert "enrich ..." in stderr  # progress goes to stderr, not stdout
    # Every function in template.yaml gets a cold start, and the quick NMI is a real NMI.
    assert set(result["cold_start_s"]) == set(run.function_specs())
    if isinstance(result["embedding_nmi_banking77"], float):
        assert 0 < result["embedding_nmi_banking77"] <= 1
    ingest = result["details"]["ingest_memory"]
    for variant in ("csv", "csv_gz"):
        assert ingest[variant]["rows"] == ingest[variant]["tickets"] + ingest[variant]["quarantined"]
    assert ingest["csv_gz"]["file_bytes"] < ingest["csv_gz"]["uncompressed_bytes"]


@pytest.mark.e2e
def test_quick_run_on_the_local_cloud():
    result, _ = bench("--quick", "--only", "e2e")
    for key in ("e2e_tickets_per_s", "emulator_batchwrite_items_per_s", "e2e_vs_emulator"):
        assert_measured(result, key)
    details = result["details"]["e2e"]
    assert details["tickets_stored"] == details["rows_uploaded"] == details["lineage"]["tickets_emitted"]
    assert any(name.endswith("enrich") for name in details["invocations"])  # read from the functions' REPORT lines
    # The cost keys come from the requests the functions really made (the local cloud's request log).
    for key in ("aws_usd_per_million_tickets", "cost_vs_floor"):
        assert_measured(result, key)
    breakdown = result["cost_breakdown"]
    assert "error" not in breakdown, breakdown
    calls = breakdown["aws_calls_by_operation"]
    # one INSERT per stored ticket, 25 to a BatchExecuteStatement
    assert calls["dynamodb.BatchExecuteStatement"] >= details["tickets_stored"] / 25
    assert breakdown["ticket_item_mean_wru"] >= 1  # every stored ticket's INSERT was priced
    assert calls.get("sqs.ReceiveMessage", 0) > 0  # the event-source pollers' receives are counted too
    assert any(name.endswith("enrich") for name in breakdown["usd_per_million_by_function"])
    assert breakdown["units_per_ticket"]["dynamodb_wru"] >= breakdown["ticket_item_mean_wru"]
    assert result["cost_vs_floor"] >= 1
    latency = details["chunk_latency_s"]  # from the chunks' counter markers
    assert latency["chunks"] >= 1 and 0 < latency["first"] <= latency["p50"] <= latency["p95"] <= latency["last"]
    assert latency["last"] <= details["seconds"] + 1 and details["first_stored_s"] <= details["seconds"]
    assert len(details["batchwrite_items_per_s_before_after"]) == 2


def test_lambda_report_lines_are_summarised(tmp_path: Path):
    (tmp_path / "supportlens-dev-enrich.log").write_text(
        "START RequestId: a Version: $LATEST\n"
        "REPORT RequestId: a\tDuration: 120414.62 ms\tMemory Size: 1769 MB\tCold start\tStatus: timeout\n"
        "REPORT RequestId: b\tDuration: 950.0 ms\tMemory Size: 1769 MB\n")
    (tmp_path / "cloud.log").write_text("no reports here\n")
    assert run.lambda_reports(tmp_path) == {
        "supportlens-dev-enrich": {"invocations": 2, "cold_starts": 1, "timeouts": 1, "max_duration_s": 120.4}}


def test_a_failing_measurement_is_recorded_and_the_run_goes_on():
    def boom(opts):
        raise RuntimeError("disk on fire")

    measurements = [run.Measurement("boom", ("a_s", "b_s"), boom),
                    run.Measurement("ok", ("c_s",), lambda opts: {"c_s": 1.5, "_details": {"ok": {"n": 1}}})]
    result = run.run(measurements, run.Options(quick=True))
    assert result["a_s"] == {"error": "RuntimeError: disk on fire"} == result["b_s"]
    assert result["c_s"] == 1.5 and result["details"] == {"ok": {"n": 1}}
    assert set(result["meta"]["seconds_per_measurement"]) == {"boom", "ok"}


def test_only_selects_by_measurement_or_key_and_rejects_unknown_names():
    assert [m.name for m in run.select("report_s,cluster_1m_peak_rss_mb")] == ["cluster_1m", "report"]
    assert [m.name for m in run.select("e2e_vs_emulator")] == ["e2e"]
    assert len(run.select(None)) == len(run.MEASUREMENTS)
    with pytest.raises(SystemExit, match="unknown --only"):
        run.select("report_s,nonsense")


def test_function_specs_follow_template_layers_and_conditions():
    specs = run.function_specs()
    assert {"Ingest", "Enrich", "Cluster", "Alerts", "Report"} <= set(specs)
    layers = {name: [layer_id for layer_id, _, _ in spec["layers"]] for name, spec in specs.items()}
    assert "DataDepsLayer" in layers["Ingest"] and "MlDepsLayer" in layers["Cluster"]
    assert all("SupportLensLayer" in ids for ids in layers.values())
    assert all((spec["code"] / "app.py").exists() for spec in specs.values())
    built = {layer_id: is_built for spec in specs.values() for layer_id, _, is_built in spec["layers"]}
    assert built["SupportLensLayer"] is None and built["CoreDepsLayer"] == "python3.11" and built["NlpDepsLayer"] == "makefile"
    # A conditional layer (Fn::If) follows the template parameters.
    if "GenaiDepsLayer" in (ROOT / "template.yaml").read_text():
        gemini = run.function_specs({"EmbeddingProvider": "gemini"})
        assert "GenaiDepsLayer" in [i for i, _, _ in gemini["Enrich"]["layers"]]
        assert "GenaiDepsLayer" not in layers["Enrich"]


def test_size_counts_what_a_build_ships(tmp_path: Path):
    """Code directories ship without bytecode caches (sam build drops them); a built layer ships
    every file it holds, its compiled bytecode and any test suites included."""
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "tests").mkdir()
    (tmp_path / "pkg" / "mod.py").write_bytes(b"x" * 1000)
    (tmp_path / "pkg" / "lib.so").write_bytes(b"y" * 5000)
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"z" * 700)
    (tmp_path / "pkg" / "tests" / "test_mod.py").write_bytes(b"t" * 900)
    assert run.tree_bytes(tmp_path) == 6900
    assert run.tree_bytes(tmp_path, skip=set(), bytecode=True) == 7600


def test_child_peak_rss_is_the_childs_own(tmp_path: Path):
    """The parent's memory must not leak into a child's peak RSS (Linux keeps it across fork+exec)."""
    ballast = bytearray(400 * 2**20)  # touch 400 MiB in this process
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    path = tmp_path / "tickets.csv"
    info = gen.write_tickets(path, 50_000)
    result, peak, _ = run.run_child(["ingest", str(path), "incoming/tickets.csv"], run.Options(quick=True))
    assert result["rows"] == info["rows"] == result["tickets"]
    assert 0 < result["rss_after_imports_mb"] <= peak < 300, peak
    del ballast


def test_generated_twcs_keeps_reply_links(tmp_path: Path):
    path = tmp_path / "twcs.csv"
    info = gen.write_twcs(path, 3 * gen.SAMPLE.stat().st_size, source=gen.SAMPLE)
    header, rows = gen.read_twcs(path)
    _, sample = gen.read_twcs(gen.SAMPLE)
    assert info["rows"] == len(rows) >= 3 * len(sample)
    ids = [r["tweet_id"] for r in rows]
    assert len(set(ids)) == len(ids)  # replicas never collide
    known = set(ids)
    parents = [r["in_response_to_tweet_id"] for r in rows if r["in_response_to_tweet_id"]]
    sample_ids = {r["tweet_id"] for r in sample}
    sample_parents = [r["in_response_to_tweet_id"] for r in sample if r["in_response_to_tweet_id"]]
    linked = sum(p in known for p in parents) / len(parents)
    assert linked == pytest.approx(sum(p in sample_ids for p in sample_parents) / len(sample_parents))
    assert len(parents) % len(sample_parents) == 0  # whole replicas


def test_generated_twcs_rows_are_unique_whole_conversations(tmp_path: Path):
    """The e2e upload: at least N rows, unique ids, and a partial replica made of whole conversations,
    so every reply link resolves exactly as often as in the source."""
    _, sample = gen.read_twcs(gen.SAMPLE)
    wanted = 2 * len(sample) + 150
    info = gen.write_twcs_rows(tmp_path / "twcs.csv", wanted, gen.SAMPLE)
    _, rows = gen.read_twcs(tmp_path / "twcs.csv")
    assert info["rows"] == len(rows) >= wanted and len(rows) < 3 * len(sample)
    ids = [r["tweet_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    tail = rows[2 * len(sample):]  # the partial replica
    by_conversation = {}
    for r in sample:
        by_conversation.setdefault(r["conversation_id"], []).append(r)
    max_id = max(int(r["tweet_id"]) for r in sample) + 1
    for conversation in {r["conversation_id"] for r in tail}:
        original = str(int(conversation) - 2 * max_id) if conversation.isdigit() else conversation
        assert len([r for r in tail if r["conversation_id"] == conversation]) == len(by_conversation[original])
    known, sample_ids = set(ids), {r["tweet_id"] for r in sample}
    def links(rs, pool):
        parents = [r["in_response_to_tweet_id"] for r in rs if r["in_response_to_tweet_id"]]
        return sum(p in pool for p in parents), len(parents)
    tail_linked, tail_parents = links(tail, known)
    source_rows = [r for c in {str(int(r["conversation_id"]) - 2 * max_id) for r in tail} for r in by_conversation[c]]
    assert (tail_linked, tail_parents) == links(source_rows, sample_ids)
    assert gen.write_twcs_rows(tmp_path / "exact.csv", 2 * len(sample), gen.SAMPLE)["rows"] == 2 * len(sample)


@pytest.mark.parametrize("generator", ["write_twcs_rows", "write_twcs"])
def test_generated_twcs_rows_survive_carriage_returns_in_text(tmp_path: Path, generator: str):
    """A tweet with a bare "\r" must stay one row for the production reader (TWCS has one); both
    generators (the e2e upload's rows and the ingest bench's bytes)."""
    from supportlens.domain.ingest import ingest_file

    header, rows = gen.read_twcs(gen.SAMPLE)
    rows[5] = {**rows[5], "text": "@AskPayPal \r\rI just love the start of email"}
    source = tmp_path / "source.csv"
    with source.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    if generator == "write_twcs_rows":
        info = gen.write_twcs_rows(tmp_path / "twcs.csv", 2 * len(rows), source)
    else:  # sized in bytes: about two replicas
        info = gen.write_twcs(tmp_path / "twcs.csv", int(1.5 * source.stat().st_size), source=source)
    messages: list = []
    report = ingest_file(lambda: (tmp_path / "twcs.csv").open("rb"), "incoming/twcs/twcs.csv", "f#1", messages.extend)
    assert report.rows_read == info["rows"] == 2 * len(rows) and report.rows_quarantined == 0
    assert sum(len(m["tickets"]) for m in messages) == info["rows"]


def test_sphere_mixture_is_unit_norm_and_clustered():
    import numpy as np

    vectors, labels = gen.sphere_mixture(2000, 64, 5, seed=1)
    assert vectors.dtype == np.float32 and vectors.shape == (2000, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    same = vectors[labels == labels[0]] @ vectors[0]
    other = vectors[labels != labels[0]] @ vectors[0]
    assert same.mean() > other.mean() + 0.5
