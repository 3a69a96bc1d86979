"""`make bench`: SupportLens benchmarks. Progress goes to stderr; the last stdout line is one JSON object.

    python -m bench.run                      # everything (≈ 10-15 min on 2 idle cores)
    python -m bench.run --quick              # tiny sizes: checks the harness, numbers mean little
    python -m bench.run --only enrich_tickets_per_s,report_s

Each measurement runs on its own: a failure records {"error": "..."} under its keys and
the run goes on. Memory-heavy measurements run in a fresh subprocess whose peak RSS is
read with getrusage(RUSAGE_CHILDREN) by a small launcher (bench/child.py), so they do not
see each other or the benchmark process. See docs/bench.md for what every number means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from bench import cost, gen

ROOT = gen.ROOT
CACHE = ROOT / ".bench-cache"
LAMBDA_LIMIT_MB = 250  # unzipped code + layers, MiB


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Options:
    quick: bool = False
    threads: int | None = None  # BLAS/OpenMP threads in child processes (None: library default)
    params: dict[str, str] | None = None  # template parameter overrides (which layers a function gets)
    prices: Path | None = None  # a price table of one's own for the cost keys (default: bench/aws_prices.json)
    e2e_rows: int | None = None  # rows the e2e measurement uploads (default E2E_ROWS, quick E2E_QUICK_ROWS)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# ------------------------------------------------------------------ subprocess helper
def child_env(opts: Options, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if opts.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(opts.threads)
    env.update(extra or {})
    return env


def run_child(args: list[str], opts: Options, timeout: float = 1800) -> tuple[dict[str, Any], float, float]:
    """(last-line JSON, peak RSS MiB of the task alone, wall seconds) of `python -m bench.child measure ARGS`."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.child", "measure", *args], cwd=ROOT, env=child_env(opts),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the launcher and the task it started
        proc.communicate()
        raise TimeoutError(f"bench.child {' '.join(args)} took more than {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"bench.child {args[0]} exited {proc.returncode}: {stderr.strip()[-800:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result, float(result.pop("peak_rss_mb")), time.perf_counter() - started


# ------------------------------------------------------------------ shared inputs
def twcs_tickets(limit: int | None = None) -> list[Any]:
    """Real TWCS rows mapped to Tickets by the production ingest path (domain.ingest)."""
    from supportlens.domain.ingest import ingest_file
    from supportlens.domain.tickets import Ticket

    source = gen.twcs_source()
    messages: list[dict[str, Any]] = []
    report = ingest_file(lambda: source.open("rb"), f"incoming/twcs/{source.name}", "bench#tickets", messages.extend)
    tickets = [Ticket.model_validate(t) for m in messages for t in m["tickets"]]
    if not tickets:
        raise RuntimeError(f"no tickets from {source} ({report.status}: {report.reason})")
    return tickets[:limit] if limit else tickets


def embedding_dim() -> int:
    from supportlens.domain import scoring

    return int(scoring.embed(["dimension probe"]).shape[1])


# ------------------------------------------------------------------ measurements
def bench_enrich(opts: Options) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    # As EnrichFunction runs: its template environment caps the BLAS threads (the library read the
    # variable when this process loaded it, so the cap is applied here at run time).
    cap = function_specs()["Enrich"]["env"].get("OPENBLAS_NUM_THREADS")
    blas_threads = int(cap) if cap else None
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        result = _bench_enrich(opts)
    result["_details"]["enrich"]["blas_threads"] = blas_threads
    return result


def _bench_enrich(opts: Options) -> dict[str, Any]:
    import numpy as np

    from supportlens.domain import scoring
    from supportlens.domain.enrichment import enrich
    from supportlens.domain.issues_model import CentroidsModel

    tickets = twcs_tickets(opts.size(4000, 300))
    dim = embedding_dim()
    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((30, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    model = CentroidsModel("bench", [f"issue-{i}" for i in range(30)], [f"issue {i}" for i in range(30)], centroids)
    batches = [tickets[i : i + 100] for i in range(0, len(tickets), 100)]
    enrich(batches[0], model)  # warm-up: lexicons, projection table, regexes
    started = time.perf_counter()
    cleaned: list[str] = []
    for batch in batches:
        cleaned += enrich(batch, model).clean_texts
    enrich_s = time.perf_counter() - started
    text_batches = [cleaned[i : i + 100] for i in range(0, len(cleaned), 100)]
    scoring.embed(text_batches[0])
    started = time.perf_counter()
    for batch in text_batches:
        scoring.embed(batch)
    embed_s = time.perf_counter() - started
    return {
        "enrich_tickets_per_s": round(len(tickets) / enrich_s, 1),
        "embedding_texts_per_s": round(len(cleaned) / embed_s, 1),
        "_details": {"enrich": {"tickets": len(tickets), "batch": 100, "source": str(gen.twcs_source().relative_to(ROOT.parent)),
                                "seconds": round(enrich_s, 3), "embed_seconds": round(embed_s, 3), "dim": dim,
                                "embedder": _embedding_id()}},
    }


def _cluster_fixed_k(corpus: Any, k: int) -> Any:
    """The production clustering (build_issues) with k fixed instead of chosen by silhouette."""
    import inspect
    from unittest import mock

    from supportlens.domain import clustering

    if "k" in inspect.signature(clustering.build_issues).parameters:
        return clustering.build_issues(corpus, None, "bench", k=k)
    with mock.patch.object(clustering, "choose_k", lambda vectors, k_range, *a, **kw: (k, {})):
        return clustering.build_issues(corpus, None, "bench")


def holdout_part(text: str) -> int:
    """sha256(text) % 5, the split of tools/fit_embedding_metric.py and tools/finetune_embedding.py."""
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 5


def bench_banking77(opts: Options) -> dict[str, Any]:
    import csv

    import numpy as np
    from sklearn.metrics import normalized_mutual_info_score

    from supportlens.domain import clustering, scoring

    path = gen.SHARED_DATA / "banking77" / "train.csv"
    if not path.exists():
        raise FileNotFoundError(f"needs {path} (../shared/data)")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if opts.quick:  # ten intents, all their rows
        keep = sorted({r["category"] for r in rows})[:10]
        rows = [r for r in rows if r["category"] in keep]
    else:  # the hash hold-out support-static-v2 was never fine-tuned on (tools/fit_embedding_metric.part)
        rows = [r for r in rows if holdout_part(r["text"]) == 0]
    texts = [r["text"] for r in rows]
    labels = [r["category"] for r in rows]
    k = len(set(labels))
    started = time.perf_counter()
    vectors = np.vstack([scoring.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)]).astype(np.float32)
    embed_s = time.perf_counter() - started
    n = len(texts)
    corpus = clustering.Corpus(ticket_ids=[f"b{i}" for i in range(n)], texts=texts, companies=["bank"] * n,
                               sentiments=["neutral"] * n, abusive=np.zeros(n, dtype=bool), days=["2024-06-01"] * n,
                               vectors=vectors)
    started = time.perf_counter()
    issues, model, _ = _cluster_fixed_k(corpus, k)
    cluster_s = time.perf_counter() - started
    # Tickets get their issue the way Enrich assigns them online: the nearest published centroid.
    assigned, _ = model.assign(vectors)
    nmi = normalized_mutual_info_score(labels, assigned)
    details = {"texts": n, "k": k, "issues": len(issues), "embed_seconds": round(embed_s, 2),
               "cluster_seconds": round(cluster_s, 2), "dim": int(vectors.shape[1]), "embedder": _embedding_id()}
    if not opts.quick:  # for the record: what the production k choice (silhouette) makes of the same data
        auto_issues, auto_model, _ = clustering.build_issues(corpus, None, "bench")
        details["auto_k"] = len(auto_issues)
        details["auto_k_nmi"] = round(float(normalized_mutual_info_score(labels, auto_model.assign(vectors)[0])), 4)
    return {"embedding_nmi_banking77": round(float(nmi), 4), "_details": {"banking77": details}}


def _embedding_id() -> str:
    try:
        from supportlens.domain.embedding import local_embedding_id

        return local_embedding_id()
    except ImportError:
        return "scoring.embed"


def bench_ingest_speed(opts: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        path = Path(tmp) / "twcs_big.csv"
        info = gen.write_twcs(path, opts.size(8_000_000, 300_000))
        log(f"  ingest: TWCS-format {info['rows']:,} rows, {info['file_bytes'] / 2**20:.1f} MiB")
        result, rss, _ = run_child(["ingest", str(path), f"incoming/{path.name}"], opts)
    return {"ingest_rows_per_s": round(result["rows"] / result["seconds"], 1),
            "_details": {"ingest_speed": {**info, **result, "peak_rss_mb": round(rss, 1), "seconds": round(result["seconds"], 2)}}}


def bench_ingest_memory(opts: Options) -> dict[str, Any]:
    size = opts.size(200 * 2**20, 2 * 2**20)
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for variant, gz in (("csv", False), ("csv_gz", True)):
            path = Path(tmp) / ("tickets.csv.gz" if gz else "tickets.csv")
            started = time.perf_counter()
            info = gen.write_tickets(path, size, gzip_it=gz)
            log(f"  ingest memory: {variant} {info['rows']:,} rows, {info['uncompressed_bytes'] / 2**20:.0f} MiB "
                f"uncompressed, {info['file_bytes'] / 2**20:.0f} MiB on disk (generated in {time.perf_counter() - started:.0f}s)")
            result, rss, _ = run_child(["ingest", str(path), f"incoming/{path.name}"], opts)
            out[variant] = round(rss, 1)
            details[variant] = {**info, **result, "seconds": round(result["seconds"], 2),
                                "rows_per_s": round(result["rows"] / result["seconds"], 1)}
            path.unlink()
    out["baseline_after_imports"] = details["csv"]["rss_after_imports_mb"]
    return {"ingest_peak_rss_mb": out, "_details": {"ingest_memory": details}}


def _cluster(n: int, opts: Options, shape: str = "mixture") -> tuple[dict[str, Any], float]:
    result, rss, _ = run_child(["cluster", str(n), "0", shape], opts, timeout=3600)
    return result, rss


def bench_cluster_100k(opts: Options) -> dict[str, Any]:
    result, rss = _cluster(opts.size(100_000, 200), opts)
    return {"cluster_100k_s": round(result["seconds"], 2), "_details": {"cluster_100k": {**result, "peak_rss_mb": round(rss, 1)}}}


def bench_cluster_1m(opts: Options) -> dict[str, Any]:
    result, rss = _cluster(opts.size(1_000_000, 400), opts)
    return {"cluster_1m_s": round(result["seconds"], 2), "cluster_1m_peak_rss_mb": round(rss, 1),
            "_details": {"cluster_1m": result}}


def bench_cluster_1m_flat(opts: Options) -> dict[str, Any]:
    """The same million on a flat silhouette curve (uniform vectors, real texts): the path tweets take,
    which adds the window's TF-IDF/SVD view before k-means (issue 11)."""
    result, rss = _cluster(opts.size(1_000_000, 400), opts, "flat")
    if not result.get("flat_curve") and not opts.quick:
        raise RuntimeError(f"the flat input gave a silhouette curve with structure ({result.get('best_silhouette')})")
    return {"cluster_1m_flat_s": round(result["seconds"], 2), "cluster_1m_flat_peak_rss_mb": round(rss, 1),
            "_details": {"cluster_1m_flat": result}}


# ------------------------------------------------------------------ template: functions and layers
def function_specs(params: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Every function in template.yaml with the layers it gets under these parameters (defaults otherwise).

    {"Ingest": {"code": Path, "handler": "app.handler", "layers": [(logical id, dir, built?)], "env": {...}}}
    """
    from localcloud.template import Resolver, load_template, parameter_values

    template = load_template(ROOT / "template.yaml")
    resources = template.get("Resources", {})
    resolver = Resolver(template, parameter_values(template, params or {}),
                        {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                         "AWS::StackName": "bench", "AWS::URLSuffix": "amazonaws.com"})
    for logical_id, res in resources.items():
        if res.get("Type") in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            resolver.refs[logical_id] = logical_id  # a layer Ref resolves to its logical id here

    def value(key: str, node: Any) -> str:
        try:
            return str(resolver.resolve(node))
        except KeyError:  # a deployed resource's name or ARN: any string will do for import
            return f"bench-{key.lower().replace('_', '-')}"

    global_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    specs: dict[str, dict[str, Any]] = {}
    for logical_id, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        if res.get("Condition") and not resolver.conditions.get(res["Condition"], True):
            continue
        props = res.get("Properties", {})
        layers = []
        for layer_id in resolver.resolve(props.get("Layers", [])):
            layer = resources.get(layer_id, {})
            if layer.get("Type") not in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
                raise ValueError(f"{logical_id}: layer {layer_id!r} is not a layer defined in template.yaml")
            content = layer["Properties"]["ContentUri"]
            built = (layer.get("Metadata") or {}).get("BuildMethod")  # python3.11 | makefile | None
            layers.append((layer_id, ROOT / content, built))
        env = {**global_env, **(props.get("Environment", {}).get("Variables", {}))}
        specs[logical_id.removesuffix("Function")] = {
            "code": ROOT / props["CodeUri"], "handler": props["Handler"], "layers": layers,
            "env": {k: value(k, v) for k, v in env.items()},
        }
    return specs


def bench_cold_start(opts: Options) -> dict[str, Any]:
    specs = function_specs(opts.params)
    runs = opts.size(3, 1)
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    probe = ("import json, sys, time; t = time.perf_counter(); import {module}; "
             "print(json.dumps({{'init_s': time.perf_counter() - t}}))")
    for name, spec in specs.items():
        module = spec["handler"].rsplit(".", 1)[0]
        # Like Lambda: the code dir, then /opt/python (code layers); dependency layers come from the venv here.
        paths = [str(spec["code"])] + [str(d / "python") for _, d, built in spec["layers"] if (d / "python").is_dir()]
        env = child_env(opts, {**spec["env"], "PYTHONPATH": os.pathsep.join(paths), "AWS_REGION": "us-east-1",
                               "AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": f"bench-{name.lower()}",
                               "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"})
        samples, walls = [], []
        for i in range(runs + (0 if opts.quick else 1)):  # a first full-mode run only warms the file cache
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", probe.format(module=module)], cwd=spec["code"], env=env,
                                  capture_output=True, text=True, timeout=300)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"{name}: import {module} failed: {proc.stderr.strip()[-600:]}")
            if i or opts.quick:
                samples.append(json.loads(proc.stdout.strip().splitlines()[-1])["init_s"])
                walls.append(wall)
        out[name] = round(statistics.median(samples), 3)
        details[name] = {"init_s": [round(s, 3) for s in samples], "process_wall_s": [round(w, 3) for w in walls]}
    return {"cold_start_s": out, "_details": {"cold_start": details}}


def aggregate_rows(tickets: int, days: int, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Aggregate rows (the shape Enrich writes) for `tickets` tickets over `days` days.

    Counter rates per ticket come from really enriching real TWCS tickets and running the
    production aggregate(); companies (Zipf) and agents grow with volume like a real account.
    """
    import numpy as np

    from supportlens.domain.enrichment import aggregate, enrich

    sample = enrich(twcs_tickets(800)).items
    deltas = aggregate(sample).rows
    totals: dict[str, float] = {}
    for (_, sk), counters in deltas.items():
        if sk.startswith("company#"):
            for counter, value in counters.items():
                totals[counter] = totals.get(counter, 0) + value
    volume = max(totals.get("volume", 1), 1)
    rates = {c: v / volume for c, v in totals.items() if c != "volume"}
    rng = np.random.default_rng(seed)
    companies = max(5, int(tickets ** 0.5 / 5))  # 10k -> 20, 1M -> 200
    channels = ("twitter", "email", "chat", "voice")
    agents = max(5, tickets // 1000)
    weights = 1 / np.arange(1, companies + 1)
    weights /= weights.sum()
    end = date(2024, 6, 30)
    rows_by_day: dict[str, list[dict[str, Any]]] = {}
    per_day = rng.multinomial(tickets, np.full(days, 1 / days))
    for d, day_total in enumerate(per_day):
        day = date.fromordinal(end.toordinal() - days + 1 + d).isoformat()
        rows = []
        cells = rng.multinomial(day_total, np.outer(weights, np.full(len(channels), 1 / len(channels))).ravel())
        for cell, count in enumerate(cells):
            if not count:
                continue
            company, channel = divmod(cell, len(channels))
            row: dict[str, Any] = {"pk": f"day#{day}", "sk": f"company#co{company}#channel#{channels[channel]}", "volume": int(count)}
            for counter, rate in rates.items():
                value = rate * count
                row[counter] = round(value, 1) if counter == "rt_sum" else int(round(value))
            rows.append(row)
        for agent in range(agents):
            rows.append({"pk": f"day#{day}", "sk": f"agent#a{agent}#channel#voice", "volume": int(day_total // agents),
                         "calls": int(day_total // agents), "call_duration_sum": 300.0 * (day_total // agents)})
        rows_by_day[day] = rows
    return rows_by_day


def bench_report(opts: Options) -> dict[str, Any]:
    from supportlens.domain.dashboard import render_dashboard
    from supportlens.domain.report import build_mime, render, summarise, summary

    sizes = {"10k": 10_000, "1m": 1_000_000} if not opts.quick else {"10k": 1_000, "1m": 20_000}
    days = 7
    end = date(2024, 6, 30)
    start = date.fromordinal(end.toordinal() - days + 1)
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    warm = summarise(aggregate_rows(100, days), "weekly", start, end, None)
    render(warm)  # matplotlib import and font cache belong to cold start, not to the report
    for label, tickets in sizes.items():
        rows = aggregate_rows(tickets, days)
        runs = []
        for _ in range(opts.size(3, 1)):
            started = time.perf_counter()
            data = summarise(rows, "weekly", start, end, None)
            summarise_s = time.perf_counter() - started
            subject, html_body, text_body, charts = render(data)
            dashboard = render_dashboard(data, summary(data))  # the dashboard is made with every report
            mime = build_mime(subject, "r@example.com", ["s@example.com"], html_body, text_body, charts).as_bytes()
            runs.append((time.perf_counter() - started, summarise_s))
        if int(data.totals.get("volume", 0)) != tickets:
            raise AssertionError(f"report counted {data.totals.get('volume')} tickets, expected {tickets}")
        total, summarise_s = sorted(runs)[len(runs) // 2]
        out[label] = round(total, 3)
        details[label] = {"tickets": tickets, "aggregate_rows": sum(len(r) for r in rows.values()),
                          "summarise_s": round(summarise_s, 4), "render_s": round(total - summarise_s, 3),
                          "runs_s": [round(r[0], 3) for r in runs], "html_bytes": len(html_body), "charts": len(charts),
                          "email_bytes": len(mime), "dashboard_bytes": len(dashboard.encode())}
    return {"report_s": out, "_details": {"report": details}}


# ------------------------------------------------------------------ function sizes
SOURCE_EXCLUDES = {"__pycache__"}  # `sam build` copies code directories without bytecode caches


def tree_bytes(directory: Path, skip: set[str] = SOURCE_EXCLUDES, bytecode: bool = False) -> int:
    """Apparent size of every file (what Lambda counts once unzipped). Code directories: without
    bytecode (not shipped); built layers: bytecode=True, skip nothing (the artifact is what ships)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            if not bytecode and name.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def built_layer(layer_dir: Path, log_prefix: str = "", make_target: str | None = None) -> Path:
    """The layer as `sam build` makes it, cached by content hash: its own Makefile target when the
    template says BuildMethod makefile (stripped ml-deps, nlp-deps), else `pip install --target` for
    the Lambda platform (manylinux2014 wheels), unpruned like sam's own pip builder."""
    requirements = layer_dir / "requirements.txt"
    makefile = layer_dir / "Makefile"
    extra = makefile.read_bytes() if make_target and makefile.exists() else b""
    digest = hashlib.sha256(requirements.read_bytes() + extra + sys.version.encode()).hexdigest()[:16]
    target = CACHE / "layers" / f"{layer_dir.name}-{digest}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if extra:
        log(f"{log_prefix}make {make_target} for {layer_dir.name} (cached afterwards under {target.relative_to(ROOT)})")
        proc = subprocess.run(["make", "-C", str(layer_dir), make_target, f"ARTIFACTS_DIR={target}", f"PYTHON={sys.executable}"],
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"make {make_target} failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
        (target / ".complete").write_text(datetime.now(timezone.utc).isoformat())
        return target
    log(f"{log_prefix}pip install --target for {layer_dir.name} (cached afterwards under {target.relative_to(ROOT)})")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                           "--target", str(target / "python"), "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                           "--python-version", "3.11", "--only-binary=:all:", "-r", str(requirements)],
                          capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install for {layer_dir.name} failed: {proc.stderr.strip()[-600:]}")
    (target / ".complete").write_text(datetime.now(timezone.utc).isoformat())
    return target


def bench_hot_keys(opts: Options) -> dict[str, Any]:
    """bench/hotkeys.py in fast mode: the last seconds of the busiest hour of a 10M-ticket day,
    before (no shards, example sets ADDed) and after (domain.shards.SHARDS, sets set once)."""
    from bench import hotkeys

    window = opts.size(10, 3)
    args = hotkeys.parser().parse_args(["--window-s", str(window), "--templates", str(opts.size(600, 200))])
    result = hotkeys.run(args)
    runs = {name: result[name] for name in ("before", "examples_set_once_no_shards", "after", "after_events_batched") if name in result}

    def each(field: str) -> dict[str, Any]:
        return {name: r[field] for name, r in runs.items()}

    value = {
        "before": result["before"]["peak_wru_per_s"], "after": result["after"]["peak_wru_per_s"],
        "limit": result["limit_wru_per_s"], "target": result["target_wru_per_s"],
        "hottest_key": each("peak_key"), "peak_by_run": each("peak_wru_per_s"),
        "items_over_400kb": each("items_over_400kb"), "conflict_rate": each("conflict_rate"),
        "retries_per_message": each("retries_per_message"), "failed_after_retries": each("transactions_failed_after_retries"),
        "backlog_s_after_window": each("drained_s_after_window"),
        "params": {**result["params"], "corpus": result["corpus"]},
    }
    trimmed = {name: {k: v for k, v in r.items() if k not in ("hottest_partitions",)} for name, r in runs.items()}
    return {"hot_key_peak_wru_per_s": value, "_details": {"hot_keys": {**trimmed, "seconds": result["seconds"]}}}


def bench_function_size(opts: Options) -> dict[str, Any]:
    specs = function_specs(opts.params)
    mib = 2**20
    layer_sizes: dict[str, float] = {}
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        parts = {"code": tree_bytes(spec["code"]) / mib}
        for layer_id, directory, built in spec["layers"]:
            if layer_id not in layer_sizes:
                if built and (directory / "requirements.txt").exists():
                    make_target = f"build-{layer_id}" if built == "makefile" else None
                    layer_sizes[layer_id] = tree_bytes(built_layer(directory, "  ", make_target), skip=set(), bytecode=True) / mib
                else:  # a code layer: shipped as it is in the repository
                    layer_sizes[layer_id] = tree_bytes(directory) / mib
            parts[layer_id] = layer_sizes[layer_id]
        total = sum(parts.values())
        out[name] = {"total": round(total, 1), "over_250": total > LAMBDA_LIMIT_MB,
                     "parts": {k: round(v, 1) for k, v in parts.items()}}
    return {"function_size_mb": out}


# ------------------------------------------------------------------ the local cloud: emulator vs end to end
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCloud:
    """The real local cloud, started and stopped through the `supportlens` CLI in a private home."""

    def __init__(self, home: Path, env: dict[str, str] | None = None):
        self.home = home
        self.env = {**os.environ, **(env or {}), "SUPPORTLENS_HOME": str(home),
                    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "SUPPORTLENS_STACK"):
            self.env.pop(key, None)
        self.env["SUPPORTLENS_LOCAL_REQUEST_LOG"] = str(home / "requests")  # every AWS call the functions make (bench/cost.py)
        self.state: dict[str, Any] = {}

    def cli(self, *args: str, timeout: float = 600) -> str:
        proc = subprocess.run([sys.executable, "-m", "supportlens_cli", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"supportlens {' '.join(args)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}")
        return proc.stdout

    def __enter__(self) -> "LocalCloud":
        self.cli("local", "up", "--template", str(ROOT / "template.yaml"), "--port", str(free_port()), timeout=300)
        self.state = json.loads((self.home / "local.json").read_text())
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.cli("local", "down", timeout=120)
        except Exception as error:  # never hide the measurement's own error
            log(f"  local down failed: {error}")

    def dynamodb(self) -> Any:
        import boto3

        from supportlens.adapters.aws import RETRY_CONFIG

        return boto3.client("dynamodb", endpoint_url=self.state["endpoint"], region_name=self.state.get("region", "us-east-1"),
                            aws_access_key_id="testing", aws_secret_access_key="testing", config=RETRY_CONFIG)


def emulator_batch_write(cloud: LocalCloud, items: list[dict[str, Any]]) -> tuple[int, float]:
    """Raw BatchWriteItem throughput on a scratch table of the running emulator: (items, seconds)."""
    from supportlens.adapters.dynamo import serialize

    ddb = cloud.dynamodb()
    table = f"bench-scratch-{os.getpid()}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}])
    try:
        requests = [{"PutRequest": {"Item": serialize(item)}} for item in items]
        started = time.perf_counter()
        for i in range(0, len(requests), 25):
            if i == 25:  # the first request warms moto up (lazy imports, the new table): not timed
                started = time.perf_counter()
            pending: dict[str, Any] = {table: requests[i : i + 25]}
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        seconds = time.perf_counter() - started
        stored = ddb.describe_table(TableName=table)["Table"].get("ItemCount")
        scanned = sum(page["Count"] for page in ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT"))
        if scanned != len(items):
            raise AssertionError(f"scratch table holds {scanned} items (ItemCount {stored}), expected {len(items)}")
        return (len(items) - 25 if len(items) > 25 else len(items)), seconds  # the items written while timed
    finally:
        ddb.delete_table(TableName=table)


def lambda_reports(log_dir: Path) -> dict[str, Any]:
    """Per function: invocations, cold starts, timeouts and the longest duration, from the REPORT log lines."""
    import re

    out: dict[str, Any] = {}
    for path in sorted(log_dir.glob("*.log")):
        durations, cold, timeouts = [], 0, 0
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("REPORT RequestId"):
                match = re.search(r"Duration: ([0-9.]+) ms", line)
                durations.append(float(match.group(1)) if match else 0.0)
                cold += "Cold start" in line
                timeouts += "Status: timeout" in line
        if durations:
            out[path.stem] = {"invocations": len(durations), "cold_starts": cold, "timeouts": timeouts,
                              "max_duration_s": round(max(durations) / 1000, 1)}
    return out


E2E_ROWS = 50_000  # issue 14: the e2e goal is stated for a 50,000-ticket upload
E2E_QUICK_ROWS = 150
# Lambda runs several SQS batches of a queue at once (it starts SQS scaling at five); with three,
# Enrich invocations compute while others wait on the emulator (2026-12-02: 2 → 3 gave 275 → 308
# tickets/s). SUPPORTLENS_LOCAL_SQS_CONCURRENCY in the environment wins.
E2E_SQS_CONCURRENCY = "3"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def chunk_latencies(cloud: LocalCloud, file_id: str, upload_epoch: float) -> list[float]:
    """Seconds from the upload command to each chunk's counters being applied, for this file's chunks.

    Enrich applies a chunk's counters in one transaction with a marker item whose `expires_at` is
    the time of that transaction (whole seconds) plus MARKER_TTL_S: exact to a second, no guessing."""
    from supportlens.adapters.dynamo import MARKER_TTL_S, deserialize

    ddb = cloud.dynamodb()
    table = cloud.state["outputs"].get("AggregatesTableName") or "supportlens-dev-aggregates"
    applied: dict[str, int] = {}  # chunk id -> when its last transaction part was applied
    prefix = f"{file_id}#chunk"
    for page in ddb.get_paginator("query").paginate(TableName=table, KeyConditionExpression="pk = :m AND begins_with(sk, :f)",
                                                    ExpressionAttributeValues={":m": {"S": "marker"}, ":f": {"S": prefix}}):
        for item in map(deserialize, page["Items"]):
            chunk = str(item["sk"]).split("#part", 1)[0]  # a chunk of many counter rows has one marker per part
            applied[chunk] = max(applied.get(chunk, 0), int(item["expires_at"]) - MARKER_TTL_S)
    return [at - upload_epoch for at in applied.values()]


def file_status(cloud: LocalCloud, file_id: str) -> dict[str, Any]:
    """The file's row of `supportlens status --json`, computed in this process by the CLI's own code
    (a CLI process per poll cost ≈ 1 s of CPU, taken from the pipeline it measures on 2 cores)."""
    from supportlens.adapters.dynamo import deserialize
    from supportlens_cli.client import summary

    item = cloud.dynamodb().get_item(TableName=cloud.state["outputs"]["FilesTableName"], Key={"file_id": {"S": file_id}},
                                     ConsistentRead=True).get("Item")
    return summary(deserialize(item)) if item else {}


def count_items(cloud: LocalCloud, table: str) -> int:
    """Items in a table of the emulator: moto counts ItemCount live from its item map (exact; AWS
    refreshes it every few hours). A COUNT scan says the same but took ≈ 90 s for 50k tickets."""
    return int(cloud.dynamodb().describe_table(TableName=table)["Table"]["ItemCount"])


def wait_until_stored(cloud: LocalCloud, file_id: str, timeout: float) -> dict[str, Any]:
    """Poll the file's lineage until it is complete (or failed, or `timeout`); seconds from the call."""
    started = time.perf_counter()
    status: dict[str, Any] = {}
    polls, first_stored_s, last_log = 0, None, 0.0
    while time.perf_counter() - started < timeout:
        polls += 1
        status = file_status(cloud, file_id)
        elapsed = time.perf_counter() - started
        if first_stored_s is None and int(status.get("tickets_stored", 0)) > 0:
            first_stored_s = round(elapsed, 1)  # one poll's resolution (1 s)
        if status.get("status") in ("complete", "rejected", "partial", "failed"):
            break
        if elapsed - last_log >= 30:
            last_log = elapsed
            log(f"  {elapsed:.0f}s: {status.get('tickets_stored', 0):,} of {status.get('tickets_emitted', '?')} stored")
        time.sleep(1.0)
    return {"status": status, "polls": polls, "first_stored_s": first_stored_s}


def stored_check(cloud: LocalCloud, file_id: str, status: dict[str, Any], rows: int, seconds: float) -> str | None:
    """Why the upload does not count as stored, or None: the lineage, the CLI and the table must agree."""
    stored = int(status.get("tickets_stored", 0)) + int(status.get("duplicates", 0))
    if status.get("status") != "complete":
        return (f"the upload was not complete after {seconds:.0f}s ({stored:,} of {rows:,} stored): "
                f"{json.dumps(status) if status else 'no lineage'}")
    lines = cloud.cli("status", "--json", "--limit", "50").splitlines()
    cli = next((r for r in map(json.loads, filter(str.strip, lines)) if r["file_id"] == file_id), {})
    if cli.get("status") != "complete":
        return f"`supportlens status` says {cli.get('status')!r} where the lineage item says complete"
    in_table = count_items(cloud, cloud.state["outputs"]["TicketsTableName"])  # the ground truth
    if in_table < stored:
        return f"lineage says {stored:,} stored but the tickets table holds {in_table:,}"
    return None


def latency_summary(cloud: LocalCloud, file_id: str, upload_epoch: float) -> dict[str, Any]:
    try:
        latencies = chunk_latencies(cloud, file_id, upload_epoch)
    except Exception as exc:  # a detail: never costs the rate
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    if not latencies:
        return {"error": "no counter markers for this file"}
    return {"chunks": len(latencies), "first": round(min(latencies), 1), "p50": round(_percentile(latencies, 0.5), 1),
            "p95": round(_percentile(latencies, 0.95), 1), "last": round(max(latencies), 1)}


def bench_e2e(opts: Options) -> dict[str, Any]:
    """Upload >= 50,000 real TWCS rows to the local cloud and wait until every ticket is stored."""
    from supportlens.domain.enrichment import enrich

    tickets = twcs_tickets()
    write_items = opts.size(5000, 200)
    base = enrich(tickets[:500]).items
    items = [{**base[i % len(base)], "ticket_id": f"bench:{i}"} for i in range(write_items)]
    rows = opts.e2e_rows or opts.size(E2E_ROWS, E2E_QUICK_ROWS)
    with tempfile.TemporaryDirectory(prefix="bench-cloud-") as tmp:
        home = Path(tmp) / "home"
        upload = Path(tmp) / "twcs_bench.csv"
        source = gen.SAMPLE if opts.quick else gen.twcs_source()
        info = gen.write_twcs_rows(upload, rows, source)  # real rows, renumbered replicas, whole conversations
        concurrency = os.environ.get("SUPPORTLENS_LOCAL_SQS_CONCURRENCY") or E2E_SQS_CONCURRENCY
        details: dict[str, Any] = {"rows_uploaded": info["rows"], "file_bytes": info["file_bytes"], "source": source.name,
                                   "sqs_concurrency": int(concurrency)}
        log("  starting the local cloud (supportlens local up)")
        started = time.perf_counter()
        with LocalCloud(home, {"SUPPORTLENS_LOCAL_SQS_CONCURRENCY": concurrency}) as cloud:
            details["local_up_s"] = round(time.perf_counter() - started, 2)
            n, write_s = emulator_batch_write(cloud, items)
            log(f"  emulator BatchWriteItem: {n / write_s:,.0f} items/s; uploading {info['rows']:,} TWCS rows")
            upload_epoch, started = time.time(), time.perf_counter()
            file_id = json.loads(cloud.cli("upload", str(upload), "--json").strip().splitlines()[-1])["file_id"]
            waited = wait_until_stored(cloud, file_id, opts.size(1800, 300))
            e2e_s = time.perf_counter() - started
            status = waited["status"]
            stored = int(status.get("tickets_stored", 0)) + int(status.get("duplicates", 0))
            details.update(tickets_stored=stored, lineage={k: status.get(k) for k in ("rows_read", "tickets_emitted", "rows_quarantined",
                                                                                      "tickets_stored", "duplicates", "tickets_quarantined")},
                           seconds=round(e2e_s, 2), status_polls=waited["polls"], first_stored_s=waited["first_stored_s"])
            error = stored_check(cloud, file_id, status, info["rows"], e2e_s)
            details["chunk_latency_s"] = latency_summary(cloud, file_id, upload_epoch)
            # The raw rate again, pipeline idle: the machine's load drifts over minutes, so the
            # denominator is the mean of a pass before and a pass after the upload.
            n_after, write_after_s = emulator_batch_write(cloud, items)
        details["invocations"] = lambda_reports(home / "logs")
        costs = cost.e2e_cost(home, status, cloud.state, [t.text for t in tickets], opts.prices)
    passes = [n / write_s, n_after / write_after_s]
    emulator = statistics.fmean(passes)
    details.update(batchwrite_items=n, batchwrite_items_per_s_before_after=[round(p, 1) for p in passes])
    measured = {"emulator_batchwrite_items_per_s": round(emulator, 1)}
    if error:  # the emulator number still stands
        return {"e2e_tickets_per_s": {"error": error}, **measured, "e2e_vs_emulator": {"error": error},
                **costs, "_details": {"e2e": details}}
    e2e = stored / e2e_s
    return {"e2e_tickets_per_s": round(e2e, 1), **measured, "e2e_vs_emulator": round(e2e / emulator, 3),
            **costs, "_details": {"e2e": details}}


# ------------------------------------------------------------------ runner
@dataclass
class Measurement:
    name: str
    keys: tuple[str, ...]
    run: Callable[[Options], dict[str, Any]]


MEASUREMENTS = [
    Measurement("enrich", ("enrich_tickets_per_s", "embedding_texts_per_s"), bench_enrich),
    Measurement("banking77", ("embedding_nmi_banking77",), bench_banking77),
    Measurement("ingest_speed", ("ingest_rows_per_s",), bench_ingest_speed),
    Measurement("ingest_memory", ("ingest_peak_rss_mb",), bench_ingest_memory),
    Measurement("e2e", ("e2e_tickets_per_s", "emulator_batchwrite_items_per_s", "e2e_vs_emulator",
                        "aws_usd_per_million_tickets", "cost_breakdown", "cost_vs_floor"), bench_e2e),
    Measurement("cluster_100k", ("cluster_100k_s",), bench_cluster_100k),
    Measurement("cluster_1m", ("cluster_1m_s", "cluster_1m_peak_rss_mb"), bench_cluster_1m),
    Measurement("cluster_1m_flat", ("cluster_1m_flat_s", "cluster_1m_flat_peak_rss_mb"), bench_cluster_1m_flat),
    Measurement("cold_start", ("cold_start_s",), bench_cold_start),
    Measurement("report", ("report_s",), bench_report),
    Measurement("function_size", ("function_size_mb",), bench_function_size),
    Measurement("hot_keys", ("hot_key_peak_wru_per_s",), bench_hot_keys),
]
ALL_KEYS = [k for m in MEASUREMENTS for k in m.keys]


def select(only: str | None) -> list[Measurement]:
    if not only:
        return list(MEASUREMENTS)
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    known = {m.name for m in MEASUREMENTS} | set(ALL_KEYS)
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"unknown --only name(s): {', '.join(sorted(unknown))}; choose from {', '.join(ALL_KEYS)}")
    return [m for m in MEASUREMENTS if m.name in wanted or wanted & set(m.keys)]


def run(measurements: list[Measurement], opts: Options) -> dict[str, Any]:
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result: dict[str, Any] = {}
    details: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for m in measurements:
        log(f"{m.name} ...")
        t0 = time.perf_counter()
        try:
            values = m.run(opts)
            details.update(values.pop("_details", {}))
            missing = set(m.keys) - set(values)
            if missing:
                raise RuntimeError(f"measurement returned no {', '.join(sorted(missing))}")
            result.update(values)
            log(f"{m.name}: {json.dumps({k: values[k] for k in m.keys})} ({time.perf_counter() - t0:.1f}s)")
            if any(isinstance(values[k], dict) and "error" in values[k] for k in m.keys):
                log(f"{m.name}: partly failed (see the error values)")
        except BaseException as exc:  # one failure never ends the run
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            message = f"{type(exc).__name__}: {exc}"[:1000]
            log(f"{m.name} FAILED: {message}\n{traceback.format_exc()}")
            for key in m.keys:
                result[key] = {"error": message}
        timings[m.name] = round(time.perf_counter() - t0, 1)
    load = os.getloadavg()
    result["meta"] = {
        "quick": opts.quick, "threads": opts.threads, "template_params": opts.params or {}, "cores": os.cpu_count(), "python": platform.python_version(),
        "machine": platform.machine(), "started": started_at,
        "seconds": round(time.perf_counter() - started, 1), "seconds_per_measurement": timings,
        "load_average_1m_at_end": round(load[0], 2),
    }
    result["details"] = details
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: exercises every measurement in about a minute")
    parser.add_argument("--only", help="comma-separated measurement names or result keys, e.g. report_s,cold_start_s")
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP threads for child processes (default: the libraries' own)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="template parameter for cold_start_s/function_size_mb (e.g. EmbeddingProvider=gemini)")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    parser.add_argument("--prices", type=Path, help="AWS price table for the cost keys (default: bench/aws_prices.json)")
    parser.add_argument("--e2e-rows", type=int, help=f"TWCS rows the e2e measurement uploads (default {E2E_ROWS:,}; --quick {E2E_QUICK_ROWS})")
    args = parser.parse_args(argv)
    measurements = select(args.only)
    # Stopped from outside: unwind, so a local cloud this run started is shut down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    params = dict(p.split("=", 1) for p in args.param)
    result = run(measurements, Options(quick=args.quick, threads=args.threads, params=params or None, e2e_rows=args.e2e_rows, prices=args.prices))
    line = json.dumps(result, sort_keys=False, default=str)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(line, flush=True)
    failed = [k for k in ALL_KEYS if isinstance(result.get(k), dict) and "error" in result[k]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
