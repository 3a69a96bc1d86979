"""What every client command shares: the target (the local cloud found through
.supportlens/local.json, or a deployed stack), uploads and the files' lineage."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STATE_DIR = Path(os.environ.get("SUPPORTLENS_HOME", ".supportlens"))
STATE_FILE = STATE_DIR / "local.json"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class CliError(Exception):
    pass


# ---------------------------------------------------------------- targets
def local_state() -> dict[str, Any] | None:
    if not STATE_FILE.exists():
        return None
    return json.loads(STATE_FILE.read_text())


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when something accepts a TCP connection at the URL's host and port."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_outputs(stack: str | None) -> dict[str, Any]:
    """Stack outputs of the target, and the environment pointed at it."""
    if stack:
        from supportlens.adapters.aws import client

        stacks = client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if os.environ.get("SUPPORTLENS_STACK"):
        return resolve_outputs(os.environ["SUPPORTLENS_STACK"])
    state = local_state()
    if state is None:
        raise CliError("no local cloud is running here: start one with `supportlens local up`, or pass --stack NAME for AWS")
    if not answers(state["endpoint"]):  # fail fast: botocore would retry a dead endpoint for many seconds
        raise CliError(f"the local cloud at {state['endpoint']} does not answer: start it with `supportlens local up` "
                       f"(if it was stopped uncleanly, `supportlens local down` removes the stale {STATE_FILE})")
    # The local cloud is the target: point every client at it (a machine-wide CA bundle or
    # real credentials in the environment must not leak into emulator calls).
    os.environ.update(AWS_ENDPOINT_URL=state["endpoint"], AWS_DEFAULT_REGION=state["region"], **LOCAL_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    return state["outputs"]


# ---------------------------------------------------------------- upload / status
def lineage(outputs: dict[str, Any], file_ids: list[str] | None = None) -> list[dict[str, Any]]:
    from supportlens.adapters import dynamo

    table = outputs["FilesTableName"]
    if file_ids is not None:
        return [dynamo.get(table, {"file_id": f}) or {"file_id": f, "status": "waiting"} for f in file_ids]
    items = dynamo.scan_all(table)
    return sorted(items, key=lambda i: i.get("received_at", ""), reverse=True)


INGEST_ATTEMPTS = 3  # IngestQueue's maxReceiveCount: after that the notification waits in the IngestDLQ


def file_state(item: dict[str, Any]) -> str:
    status = item.get("status", "waiting")
    if status == "emitted":
        done = int(item.get("tickets_stored", 0)) + int(item.get("duplicates", 0)) + int(item.get("tickets_quarantined", 0))
        return "complete" if done >= int(item.get("tickets_emitted", 0)) else "enriching"
    if status == "failed":  # SQS retries the notification; after the last attempt a person must look
        return "failed" if int(item.get("attempts", 0)) >= INGEST_ATTEMPTS else "retrying"
    return status


def summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": item.get("key") or item["file_id"].rsplit("#", 1)[0],
        "file_id": item["file_id"],
        "source": item.get("source"),
        "delimiter": item.get("delimiter"),
        "rows_read": int(item.get("rows_read", 0)),
        "tickets_emitted": int(item.get("tickets_emitted", 0)),
        "rows_quarantined": int(item.get("rows_quarantined", 0)),
        "tickets_stored": int(item.get("tickets_stored", 0)),
        "duplicates": int(item.get("duplicates", 0)),
        "tickets_quarantined": int(item.get("tickets_quarantined", 0)),
        "status": file_state(item),
        "reason": item.get("reason") or item.get("last_error"),
        "attempts": int(item.get("attempts", 0)) or None,
        "quarantine_key": item.get("quarantine_key"),
    }


FINAL = {"complete", "rejected", "partial", "failed", "superseded"}


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for the files directly in it (hidden ones skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not inside:
                raise CliError(f"{path}: a folder with no files in it")
            files.extend(inside)
        elif path.is_file():
            files.append(path)
        else:
            raise CliError(f"{path}: no such file or folder")
    return files


def check_source(source: str | None) -> None:
    from supportlens.domain.sources import FORMATS

    if source is not None and source not in FORMATS:
        raise CliError(f"unknown --source {source!r}: one of {', '.join(sorted(FORMATS))} (or leave it out to detect the format)")


def upload(paths: list[Path], source: str | None, outputs: dict[str, Any]) -> list[str]:
    from supportlens.adapters.aws import client

    check_source(source)
    files = expand_paths(paths)
    s3 = client("s3")
    bucket = outputs["DataBucketName"]
    file_ids = []
    for path in files:
        key = f"incoming/{source}/{path.name}" if source else f"incoming/{path.name}"
        with path.open("rb") as body:
            etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
        file_ids.append(f"{key}#{etag}")
    return file_ids


class WaitInterrupted(CliError):
    """Waiting stopped (timeout or Ctrl-C): carries where every file stood at that moment."""

    def __init__(self, message: str, rows: list[dict[str, Any]]):
        super().__init__(message)
        self.rows = rows


def wait_for(outputs: dict[str, Any], file_ids: list[str], timeout: float, progress: bool) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = [{"key": f.rsplit("#", 1)[0], "file_id": f, "status": "waiting"} for f in file_ids]
    try:
        while True:
            items = [summary(i) for i in lineage(outputs, file_ids)]
            if progress:
                parts = [f"{i['key'].rsplit('/', 1)[-1]}: {i['status']} {i['tickets_stored']}/{i['tickets_emitted']}" for i in items]
                print("\r  " + " | ".join(parts)[:200].ljust(80), end="", file=sys.stderr, flush=True)
            if all(i["status"] in FINAL for i in items):
                if progress:
                    print(file=sys.stderr)
                return items
            if time.monotonic() > deadline:
                if progress:
                    print(file=sys.stderr)
                raise WaitInterrupted(f"timed out after {timeout:.0f}s waiting for: "
                                      + ", ".join(i["key"] for i in items if i["status"] not in FINAL), items)
            time.sleep(0.5)
    except KeyboardInterrupt:
        if progress:
            print(file=sys.stderr)
        raise WaitInterrupted("interrupted; the files keep being processed (see `supportlens status`)", items) from None


def quarantine_reasons(bucket: str, key: str, top: int | None = 3) -> list[tuple[str, int]]:
    """The most common reasons in a quarantine object (reasons name columns and problems, never values)."""
    from collections import Counter

    from supportlens.adapters import s3

    raw = s3.get_bytes_if_exists(bucket, key)
    if raw is None:
        return []
    counts: Counter[str] = Counter()
    for line in raw.decode("utf-8", errors="replace").splitlines():
        try:
            counts[str(json.loads(line).get("reason") or "no reason recorded")] += 1
        except (ValueError, AttributeError):
            continue
    return counts.most_common(top)


def print_table(rows: list[dict[str, Any]], bucket: str | None = None) -> None:
    columns = ["key", "source", "rows_read", "tickets_emitted", "rows_quarantined", "tickets_stored", "status"]
    widths = {c: max(len(c), *(len(str(r.get(c) or "")) for r in rows)) for c in columns} if rows else {c: len(c) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c) if row.get(c) is not None else "").ljust(widths[c]) for c in columns))
        if row.get("delimiter") not in (None, "comma"):  # the default needs no word
            print(f"    read as CSV separated by {row['delimiter']}")
        if row.get("reason"):
            print(f"    reason: {row['reason']}")
        if bucket and row.get("rows_quarantined") and row.get("quarantine_key"):
            for reason, n in quarantine_reasons(bucket, row["quarantine_key"]):
                print(f"    quarantined {n}: {reason}")
            print(f"    all reasons: supportlens quarantine {row['quarantine_key']}")
