"""Synthetic inputs for the benchmarks, built from real bundled text (never random noise text)."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "samples" / "twcs_sample.csv"
SHARED_DATA = ROOT.parent / "shared" / "data"
TWCS_SHARED = SHARED_DATA / "twcs" / "train.csv"
ID_COLUMNS = ("tweet_id", "response_tweet_id", "in_response_to_tweet_id", "conversation_id")


def twcs_source() -> Path:
    """The TWCS rows to use: ../shared/data/twcs when present, else the bundled sample."""
    return TWCS_SHARED if TWCS_SHARED.exists() else SAMPLE


def read_twcs(path: Path | None = None) -> tuple[list[str], list[dict[str, str]]]:
    path = path or twcs_source()
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _shift_ids(value: str, offset: int) -> str:
    """Renumber tweet ids (and comma-separated id lists) so replicas never collide and replies stay linked."""
    if not value:
        return value
    out = []
    for part in value.split(","):
        part = part.strip()
        out.append(str(int(part) + offset) if part.isdigit() else part)
    return ",".join(out)


def twcs_rows(rows: list[dict[str, str]], replicas: int, first: int = 0, max_id: int | None = None) -> Iterator[dict[str, str]]:
    """`replicas` copies of real TWCS rows with renumbered ids: a bigger file with the same shape.

    Replica r shifts every id by r * max_id (`first` is the first replica's number), so replicas never collide."""
    if max_id is None:
        max_id = max(int(r["tweet_id"]) for r in rows if r["tweet_id"].isdigit()) + 1
    for rep in range(first, first + replicas):
        offset = rep * max_id
        for row in rows:
            new = dict(row)
            for column in ID_COLUMNS:
                if column in new:
                    new[column] = _shift_ids(new[column] or "", offset)
            yield new


def write_twcs(path: Path, min_bytes: int, gzip_it: bool = False, source: Path | None = None) -> dict[str, int]:
    """Write a TWCS-format CSV of at least `min_bytes` (uncompressed); returns rows and sizes."""
    header, rows = read_twcs(source)
    one = io.StringIO()
    writer = csv.DictWriter(one, fieldnames=header, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    replicas = max(1, -(-min_bytes // max(1, len(one.getvalue().encode()))))
    opener = (lambda p: gzip.open(p, "wt", encoding="utf-8", newline="", compresslevel=1)) if gzip_it else (
        lambda p: p.open("w", encoding="utf-8", newline=""))
    count = 0
    raw = 0
    with opener(path) as f:
        # "\r\n", as in write_twcs_rows: the writer then quotes a field holding a bare "\r".
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\r\n")
        writer.writeheader()
        buf = io.StringIO()
        bw = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n")
        for row in twcs_rows(rows, replicas):
            bw.writerow(row)
            count += 1
            if count % 20_000 == 0:
                text = buf.getvalue()
                raw += len(text.encode())
                f.write(text)
                buf.seek(0)
                buf.truncate()
        text = buf.getvalue()
        raw += len(text.encode())
        f.write(text)
    return {"rows": count, "uncompressed_bytes": raw, "file_bytes": path.stat().st_size}


def sphere_mixture(n: int, dim: int, k: int, seed: int = 0, spread: float = 0.35, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors from k Gaussian clusters on the unit sphere (float32), and their labels."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(k, 2.0))
    labels = rng.choice(k, size=n, p=weights)
    out = np.empty((n, dim), dtype=np.float32)
    scale = spread / np.sqrt(dim)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = centers[labels[start:stop]] + rng.standard_normal((stop - start, dim), dtype=np.float32) * scale
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out, labels


def real_texts(limit: int | None = None) -> list[str]:
    """Distinct real support texts: TWCS (shared or sample), plus Banking77 and airline tweets when present."""
    texts: list[str] = [r["text"] for r in read_twcs()[1]]
    for name in ("banking77", "airline_sentiment"):
        path = SHARED_DATA / name / "train.csv"
        if path.exists():
            with path.open(newline="", encoding="utf-8") as f:
                texts += [row["text"] for row in csv.DictReader(f)]
    texts = [t for t in dict.fromkeys(texts) if t.strip()]
    return texts[:limit] if limit else texts


def write_tickets(path: Path, min_bytes: int, gzip_it: bool = False, body_chars: int = 1500) -> dict[str, int]:
    """A canonical-ticket CSV (email channel) of at least `min_bytes` uncompressed.

    Bodies are real TWCS customer texts joined to email length, so a 200 MB file has
    ~130k rows rather than a million tweets (ingest time scales with rows, memory must not).
    """
    header, rows = read_twcs()
    texts = [r["text"] for r in rows if r.get("inbound", "").lower() == "true"] or [r["text"] for r in rows]
    companies = sorted({r["author_id"] for r in rows if r.get("inbound", "").lower() != "true"}) or ["acme"]
    columns = ["ticket_id", "source", "channel", "author_id", "company", "created_at", "text"]
    opener = (lambda p: gzip.open(p, "wt", encoding="utf-8", newline="", compresslevel=1)) if gzip_it else (
        lambda p: p.open("w", encoding="utf-8", newline=""))
    raw = count = 0
    t = 0
    with opener(path) as f:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        while raw < min_bytes:
            parts, size = [], 0
            while size < body_chars:
                parts.append(texts[t % len(texts)])
                size += len(parts[-1]) + 2
                t += 1
            count += 1
            day = 1 + count % 28
            w.writerow([f"mail-{count}", "ticket", "email", f"cust-{count % 50_000}", companies[count % len(companies)],
                        f"2024-06-{day:02d}T{count % 24:02d}:{count % 60:02d}:00Z", "\n\n".join(parts)])
            if count % 5_000 == 0:
                text = buf.getvalue()
                raw += len(text.encode())
                f.write(text)
                buf.seek(0)
                buf.truncate()
        text = buf.getvalue()
        raw += len(text.encode())
        f.write(text)
    return {"rows": count, "uncompressed_bytes": raw, "file_bytes": path.stat().st_size}


def write_twcs_rows(path: Path, min_rows: int, source: Path | None = None) -> dict[str, int]:
    """A TWCS-format CSV of at least `min_rows` real rows: whole renumbered replicas of the source,
    then whole conversations of one more replica, so every id is unique and every reply link
    points where it did in the source (a conversation is never cut)."""
    header, rows = read_twcs(source)
    max_id = max(int(r["tweet_id"]) for r in rows if r["tweet_id"].isdigit()) + 1
    whole, rest = divmod(min_rows, len(rows))
    extra: list[dict[str, str]] = []
    if rest:
        conversations: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            conversations.setdefault(row.get("conversation_id") or row["tweet_id"], []).append(row)
        for members in conversations.values():
            if len(extra) >= rest:
                break
            extra.extend(members)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        # "\r\n" makes the writer quote a field holding a bare "\r" (one TWCS tweet has "\r\r"); with
        # "\n" it is written unquoted and a reader splits the row in two.
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\r\n")
        writer.writeheader()
        for row in twcs_rows(rows, whole, max_id=max_id):
            writer.writerow(row)
            count += 1
        for row in twcs_rows(extra, 1 if extra else 0, first=whole, max_id=max_id):
            writer.writerow(row)
            count += 1
    return {"rows": count, "file_bytes": path.stat().st_size}
