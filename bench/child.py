"""Work run in a fresh subprocess, with its own peak RSS.

    python -m bench.child measure ingest PATH KEY
    python -m bench.child measure cluster N SEED

`measure` is a small stdlib-only launcher: it runs the task in a grandchild and reads
getrusage(RUSAGE_CHILDREN).ru_maxrss. The indirection matters: Linux carries a forked
process's high-water RSS across exec, so a task forked straight from the (big) benchmark
process would report the benchmark's memory as its own.
The last stdout line is one JSON object with the timings and `peak_rss_mb`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def ingest(path: str, key: str) -> dict:
    from supportlens.domain.ingest import ingest_file

    baseline = _rss_mb()
    sent = {"messages": 0, "bytes": 0}

    def send(messages: list[dict]) -> None:  # what SQS would receive; counted, then dropped
        sent["messages"] += len(messages)
        sent["bytes"] += sum(len(json.dumps(m, ensure_ascii=False)) for m in messages)

    started = time.perf_counter()
    report = ingest_file(lambda: Path(path).open("rb"), key, f"{key}#bench", send)
    seconds = time.perf_counter() - started
    if report.status != "emitted":
        raise SystemExit(f"ingest ended {report.status}: {report.reason}")
    return {"seconds": seconds, "rows": report.rows_read, "tickets": report.tickets_emitted,
            "quarantined": report.rows_quarantined, "messages": sent["messages"], "source": report.source,
            "rss_after_imports_mb": round(baseline, 1)}


def cluster(n: int, seed: int, shape: str = "mixture") -> dict:
    """`mixture`: 40 Gaussian clusters on the sphere (a silhouette curve with structure); `flat`: uniform
    random unit vectors with real texts in file order (a flat curve, as short tweets give: the code path
    that adds the window's TF-IDF/SVD view)."""
    import numpy as np

    from bench.gen import real_texts, sphere_mixture
    from supportlens.domain import clustering, scoring

    dim = int(scoring.embed(["dimension probe"]).shape[1])
    true_k = 40
    pool = real_texts()
    if shape == "flat":
        rng = np.random.default_rng(seed)
        vectors = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):
            block = rng.standard_normal((min(n, start + 100_000) - start, dim), dtype=np.float32)
            vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
        labels = np.arange(n) % true_k
        texts = [pool[i % len(pool)] for i in range(n)]
    else:
        vectors, labels = sphere_mixture(n, dim, true_k, seed=seed)
        # Each synthetic cluster draws its texts from its own slice of real texts, so phrases differ by cluster.
        per = max(1, len(pool) // true_k)
        texts = [pool[(lab * per + i % per) % len(pool)] for i, lab in enumerate(labels.tolist())]
    days = [f"2024-06-{1 + (i * 7 + lab) % 30:02d}" for i, lab in enumerate(labels.tolist())]
    corpus = clustering.Corpus(
        ticket_ids=[f"t{i}" for i in range(n)], texts=texts, companies=[f"co{lab % 12}" for lab in labels.tolist()],
        sentiments=["negative" if i % 3 == 0 else "neutral" for i in range(n)], abusive=np.zeros(n, dtype=bool),
        days=days, vectors=vectors,
    )
    before = _rss_mb()
    started = time.perf_counter()
    issues, model, scores = clustering.build_issues(corpus, None, "bench")
    seconds = time.perf_counter() - started
    best = max(scores.values()) if scores else None
    return {"seconds": seconds, "cpu_seconds": round(time.process_time(), 1), "n": n, "dim": dim, "shape": shape,
            "true_k": true_k if shape == "mixture" else None, "k": len(issues),
            "flat_curve": bool(scores) and not clustering.has_structure(scores, clustering.k_floor(n)), "best_silhouette": best,
            "peak_rss_before_clustering_mb": round(before, 1)}


def measure(argv: list[str]) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "bench.child", *argv], stdout=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    result["launcher_rss_mb"] = round(_rss_mb(), 1)
    print(json.dumps(result))


def main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "measure":
        measure(args)
        return
    if kind == "ingest":
        result = ingest(args[0], args[1])
    elif kind == "cluster":
        result = cluster(int(args[0]), int(args[1]), *args[2:3])
    else:
        raise SystemExit(f"unknown child task {kind!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
