"""What the e2e run would cost on AWS, from the request log the local cloud wrote (infra/localcloud/request_log.py).

Every AWS call a function (or an event-source poller) made is priced by the unit AWS bills it in:

- DynamoDB on-demand: a write is 1 WRU per started KB of the item (a BatchWriteItem put too, per
  item); a transactional write is 2 per KB; an UpdateItem is billed on the item's size after the
  update (here: its key plus every attribute updates have written to it so far in the run — moto
  returns no size-based ConsumedCapacity, so it is computed, see `describe`); a failed conditional
  write still costs its WRU; a read is 1 RRU per started 4 KB strongly consistent, half that
  eventually consistent, 2 per 4 KB in a transaction; Query/Scan round the page's total, BatchGetItem
  and GetItem round each item (a missing item still costs the minimum). GSIs add their projected
  writes (the template has none today). DynamoDB Streams reads by a Lambda trigger are free.
- SQS: one request per started 64 KB of payload (a batch's payloads added up), empty receives
  included but reported apart (they depend on time, not tickets).
- S3: PUT/COPY/POST/LIST at the PUT tier, GET and the rest at the GET tier, DELETE free.
- SNS publish per 64 KB, SES per recipient + message data, Secrets Manager per call.
- Lambda: a request per invocation, GB-seconds from the measured duration (and the INIT time of
  cold starts, billed since 2025-08-01) at the function's MemorySize, rounded up to 1 ms.
- CloudWatch Logs: the bytes the functions logged.

Lambda is billed twice over: as measured on the emulator, and as AWS would answer. A function's
measured duration = its own compute + its waits on AWS calls; the emulator (moto) answers several
times slower than AWS, and that wait is nobody's bill. `aws_latency_duration_ms` keeps the compute
(duration minus the wall time spent in calls) and replaces each call's share of the wait by the
same share of a stated AWS latency for its kind (`aws_latency_ms` in aws_prices.json, overridable).
`aws_usd_per_million_tickets` and `cost_vs_floor` use that bill (it is what AWS would charge); the
emulator-measured bill is reported beside it (`cost_breakdown.emulator_latency`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

PRICES = Path(__file__).with_name("aws_prices.json")
TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
KB = 1024
SQS_UNIT = 64 * 1024
GB = 1024**3
S3_PUT_TIER = {"PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2", "ListBuckets",
               "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "ListObjectVersions",
               "ListMultipartUploads", "ListParts"}
S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}


def load_prices(path: Path | None = None) -> dict[str, Any]:
    """The repo's dated table, with a user's file (same keys: {"prices": {key: {"usd": ...}}}) on top."""
    table = json.loads(PRICES.read_text())
    if path is not None:
        own = json.loads(Path(path).read_text())
        for key, entry in (own.get("prices") or {}).items():
            table["prices"][key] = {**table["prices"].get(key, {}), **entry}
        table["aws_latency_ms"] = {**table.get("aws_latency_ms", {}), **(own.get("aws_latency_ms") or {})}
        table["as_of"] = own.get("as_of", table["as_of"])
        table["file"] = str(path)
    return table


# ------------------------------------------------------------------ units
def wru(size_bytes: int, transactional: bool = False) -> int:
    """Write request units of one item write: 1 per started KB (min 1), doubled in a transaction."""
    units = max(1, math.ceil(size_bytes / KB))
    return units * 2 if transactional else units


def rru(size_bytes: int, consistent: bool = False, transactional: bool = False) -> float:
    """Read request units of one read of `size_bytes`: 1 per started 4 KB strongly consistent (min 1),
    half eventually consistent, 2 per 4 KB in a transaction."""
    units = max(1, math.ceil(size_bytes / (4 * KB)))
    if transactional:
        return units * 2.0
    return float(units) if consistent else units / 2


def sqs_units(payload_bytes: int) -> int:
    """SQS bills each started 64 KB of a request's payload as one request (min 1)."""
    return max(1, math.ceil(payload_bytes / SQS_UNIT))


def gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """Lambda duration is billed per started millisecond at the configured memory."""
    return math.ceil(round(duration_ms, 6)) / 1000 * memory_mb / 1024  # round: 1000.0000000001 ms is 1000 ms


def gsi_wru(item_size: int, projection: str, key_size: int = 0, transactional: bool = False) -> int:
    """What one GSI adds to a put of an item carrying the index's keys: the projected item's size.
    ALL projects the whole item; KEYS_ONLY/INCLUDE project the keys (+ included attributes), small."""
    projected = item_size if projection == "ALL" else key_size
    return wru(projected, transactional)


# ------------------------------------------------------------------ reading the log
def read_log(log_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(calls in time order, invocations) from a request-log directory."""
    calls: list[dict[str, Any]] = []
    for path in sorted((log_dir / "calls").glob("*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            if line.strip():
                try:
                    calls.append(json.loads(line))
                except ValueError:
                    continue  # a line cut by a killed worker
    invocations = []
    inv_path = log_dir / "invocations.jsonl"
    if inv_path.exists():
        invocations = [json.loads(line) for line in inv_path.read_text().splitlines() if line.strip()]
    calls.sort(key=lambda c: c.get("t", 0))
    return calls, invocations


class Bill:
    """Adds up units and dollars per service and per function."""

    def __init__(self, prices: dict[str, Any]) -> None:
        self.prices = {k: float(v["usd"]) for k, v in prices["prices"].items()}
        self.units: dict[str, float] = defaultdict(float)  # unit name -> count
        self.usd_service: dict[str, float] = defaultdict(float)
        self.usd_function: dict[str, float] = defaultdict(float)

    def add(self, function: str, service: str, unit: str, count: float, price_key: str) -> None:
        if not count:
            return
        usd = count * self.prices[price_key]
        self.units[unit] += count
        self.usd_service[service] += usd
        self.usd_function[function] += usd


def price_calls(calls: list[dict[str, Any]], bill: Bill, gsis: dict[str, list[str]] | None = None,
                tickets_table: str | None = None) -> dict[str, Any]:
    """Prices every logged call into `bill`; returns facts the caller reports (ticket puts, idle polls)."""
    gsis = gsis or {}
    item_attrs: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # (table, key hash) -> attr hash -> size
    facts = {"ticket_put_wru": 0, "ticket_puts": 0, "ticket_put_bytes": 0, "empty_receives": 0, "calls": 0,
             "aws_call_spans": defaultdict(list), "aws_call_kinds": defaultdict(list), "hook_ms": defaultdict(float), "calls_by_op": defaultdict(int), "wru_by_write": defaultdict(float)}
    for call in calls:
        svc, op, fn = call.get("svc"), call.get("op"), call.get("src", "unknown")
        if not svc or call.get("status") is None:
            continue  # no HTTP answer: nothing billed
        facts["calls"] += 1
        facts["calls_by_op"][f"{svc}.{op}"] += 1
        if call.get("trace") and call.get("hook_ms"):  # the request log's own CPU, not the function's
            facts["hook_ms"][call["trace"]] += float(call["hook_ms"])
        if call.get("trace") and call.get("ms") is not None:
            end = float(call.get("t") or 0)
            facts["aws_call_spans"][call["trace"]].append((end - float(call["ms"]) / 1000, end))
            facts["aws_call_kinds"][call["trace"]].append(f"{svc}.{op}")
        error = call.get("error")
        if svc == "dynamodb":
            _price_dynamodb(call, op, fn, error, bill, gsis, item_attrs, facts, tickets_table)
        elif svc == "dynamodbstreams":
            bill.add(fn, "dynamodb_streams", "dynamodb_streams_lambda_reads", 1, "dynamodb_streams_lambda_read")
        elif svc == "sqs":
            if op == "ReceiveMessage":
                received = call.get("received") or []
                if not received:
                    facts["empty_receives"] += 1  # priced apart: their number follows the clock, not the tickets
                    continue
                bill.add(fn, "sqs", "sqs_requests", sqs_units(sum(received)), "sqs_request")
            elif op in ("SendMessage", "SendMessageBatch"):
                bill.add(fn, "sqs", "sqs_requests", sqs_units(sum(call.get("payloads") or [0])), "sqs_request")
            else:
                bill.add(fn, "sqs", "sqs_requests", 1, "sqs_request")
        elif svc == "s3":
            if op in S3_FREE:
                continue
            if op in S3_PUT_TIER:
                bill.add(fn, "s3", "s3_put_requests", 1, "s3_put_tier")
            else:
                bill.add(fn, "s3", "s3_get_requests", 1, "s3_get_tier")
        elif svc == "sns":
            if op in ("Publish", "PublishBatch") and not error:
                bill.add(fn, "sns", "sns_publishes", max(1, call.get("entries", 1)) * sqs_units(call.get("bytes", 0)), "sns_publish")
        elif svc in ("ses", "sesv2"):
            if op in ("SendEmail", "SendRawEmail") and not error:
                bill.add(fn, "ses", "ses_emails", call.get("recipients", 1), "ses_email")
                bill.add(fn, "ses", "ses_gb", call.get("bytes", 0) / GB, "ses_attachment_gb")
        elif svc == "secretsmanager":
            bill.add(fn, "secretsmanager", "secretsmanager_calls", 1, "secretsmanager_api")
    return facts


def _price_dynamodb(call: dict[str, Any], op: str, fn: str, error: str | None, bill: Bill, gsis: dict[str, list[str]],
                    item_attrs: dict, facts: dict[str, Any], tickets_table: str | None) -> None:
    if error and error not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
        return  # validation errors, throttles: no capacity consumed
    writes = call.get("writes")
    if writes is not None:
        transactional = bool(call.get("transaction"))
        unprocessed = list(call.get("unprocessed") or [])
        statement_errors = call.get("statement_errors") or []
        for write in writes:
            position = write.get("statement")
            statement_error = statement_errors[position] if position is not None and position < len(statement_errors) else None
            if statement_error not in (None, "DuplicateItem", "ConditionalCheckFailed"):
                continue  # throttled, conflicting or invalid: nothing written, its retry is logged again
            if op == "BatchWriteItem" and write["k"] == "put":
                match = next((u for u in unprocessed if u["table"] == write["table"] and u["size"] == write["size"]), None)
                if match is not None:  # not written now; its retry is another logged call
                    unprocessed.remove(match)
                    continue
            size = _write_size(write, item_attrs)
            units = wru(size, transactional)
            label = _table_label(write["table"], tickets_table)
            for projection in gsis.get(label, []):
                if write["k"] in ("put", "update", "delete"):
                    units += gsi_wru(size, projection, write.get("key_size", 0), transactional)
            bill.add(fn, "dynamodb", "dynamodb_wru", units, "dynamodb_wru")
            row = f" {write['row']}#" if write.get("row") else ""
            facts["wru_by_write"][f"{label}{row} {write['k']}{' (transaction)' if transactional else ''}"] += units
            if tickets_table and write["table"] == tickets_table and write["k"] == "put" and not error and not statement_error:
                facts["ticket_puts"] += 1
                facts["ticket_put_bytes"] += size
                facts["ticket_put_wru"] += wru(size)  # the floor: one plain put, no transaction, no GSI
        return
    if op == "GetItem":
        sizes = call.get("sizes") or [0]
        bill.add(fn, "dynamodb", "dynamodb_rru", rru(sizes[0], call.get("consistent", False)), "dynamodb_rru")
    elif op == "BatchGetItem":
        units = 0.0
        for table, spec in (call.get("keys") or {}).items():
            sizes = (call.get("sizes") or {}).get(table, [])
            missing = spec["n"] - len(sizes) - (call.get("unprocessed") or {}).get(table, 0)
            units += sum(rru(s, spec["consistent"]) for s in sizes) + max(0, missing) * rru(0, spec["consistent"])
        bill.add(fn, "dynamodb", "dynamodb_rru", units, "dynamodb_rru")
    elif op == "TransactGetItems":
        bill.add(fn, "dynamodb", "dynamodb_rru", sum(rru(s, transactional=True) for s in call.get("sizes") or [0]), "dynamodb_rru")
    elif op in ("Query", "Scan"):
        sizes = call.get("sizes") or []
        read = sum(sizes)
        if sizes and call.get("scanned", len(sizes)) > len(sizes):  # a filter dropped items we never saw: scale
            read = read * call["scanned"] / len(sizes)
        bill.add(fn, "dynamodb", "dynamodb_rru", rru(int(read), call.get("consistent", False)), "dynamodb_rru")
    # DescribeTable and other control-plane calls are free.


def _table_label(table: str, tickets_table: str | None) -> str:
    """'tickets', 'aggregates', ...: the physical name without its stack prefix."""
    if tickets_table and table == tickets_table:
        return "tickets"
    return table.rsplit("-", 1)[-1]


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """Wall time covered by (start, end) spans: concurrent calls count once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def call_shares(spans: list[tuple[float, float]]) -> list[float]:
    """Each span's share of the wall time the spans cover: where k calls overlap, each gets 1/k of
    that stretch (so the shares add up to `busy_seconds`)."""
    points = sorted([(start, 1, i) for i, (start, _) in enumerate(spans)] + [(end, 0, i) for i, (_, end) in enumerate(spans)])
    shares = [0.0] * len(spans)
    active: set[int] = set()
    last = None
    for t, is_start, i in points:  # a sweep: between two points the set of running calls is fixed
        if active and last is not None and t > last:
            for j in active:
                shares[j] += (t - last) / len(active)
        last = t
        if is_start:
            active.add(i)
        else:
            active.discard(i)
    return shares


def latency_ms(kind: str, table: dict[str, Any]) -> float:
    """The stated AWS latency of one call of `kind` ('dynamodb.PutItem'): exact, else 'dynamodb.*', else '*'."""
    for key in (kind, kind.split(".", 1)[0] + ".*", "*"):
        if key in table and not isinstance(table[key], str):
            return float(table[key])
    raise KeyError(f"no AWS latency for {kind!r} (and no '*' default)")


def aws_wait_ms(spans: list[tuple[float, float]], kinds: list[str], table: dict[str, Any]) -> float:
    """The wall time an invocation's calls would take at AWS latency, concurrency kept as measured:
    each call's share of the measured wait, scaled by (AWS latency / its measured duration)."""
    total = 0.0
    for (start, end), kind, share in zip(spans, kinds, call_shares(spans)):
        measured = end - start
        if measured > 0:
            total += share * latency_ms(kind, table) / (measured * 1000) * 1000
    return total


def template_gsis(template: Path) -> dict[str, list[str]]:
    """Per table (its name's last part: 'tickets', 'aggregates', ...), the projection type of each GSI
    template.yaml gives it. A put or update writes each GSI too; today the template has none."""
    from infra.localcloud.template import load_template

    out: dict[str, list[str]] = {}
    for logical_id, resource in (load_template(template).get("Resources") or {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = resource.get("Properties") or {}
        name = props.get("TableName", logical_id)
        name = name.get("Fn::Sub", logical_id) if isinstance(name, dict) else str(name)
        indexes = props.get("GlobalSecondaryIndexes") or []
        if indexes:
            out[str(name).rsplit("-", 1)[-1]] = [(i.get("Projection") or {}).get("ProjectionType", "KEYS_ONLY") for i in indexes]
    return out


def _write_size(write: dict[str, Any], item_attrs: dict) -> int:
    if write["k"] == "put":
        return int(write["size"])
    if write["k"] == "update":
        attrs = item_attrs[(write["table"], write["key"])]
        attrs.update(write.get("attrs") or {})
        return int(write.get("key_size", 0)) + sum(attrs.values())
    return int(write.get("key_size", 0))  # delete / condition check: the item's size is unknown here; its key is the minimum


def price_lambda(invocations: list[dict[str, Any]], bill: Bill, arch: dict[str, str] | None = None) -> dict[str, Any]:
    arch = arch or {}
    per_fn: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for inv in invocations:
        name = inv["function_name"]
        billed_ms = float(inv.get("duration_ms") or 0) + float(inv.get("init_ms") or 0)
        gbs = gb_seconds(billed_ms, int(inv["memory_mb"]))
        key = "lambda_gb_s_arm64" if arch.get(inv.get("function", ""), "x86_64") == "arm64" else "lambda_gb_s_x86"
        bill.add(name, "lambda", "lambda_requests", 1, "lambda_request")
        bill.add(name, "lambda", "lambda_gb_s", gbs, key)
        stats = per_fn[name]
        stats["invocations"] += 1
        stats["gb_s"] += gbs
        stats["billed_s"] += math.ceil(round(billed_ms, 6)) / 1000
        stats["memory_mb"] = int(inv["memory_mb"])
    return {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in per_fn.items()}


def price_logs(log_dir: Path | None, function_names: set[str], bill: Bill) -> int:
    """CloudWatch Logs ingestion of what the functions printed (their <function_name>.log files)."""
    if log_dir is None or not log_dir.exists():
        return 0
    total = 0
    for path in log_dir.glob("*.log"):
        if path.stem in function_names:
            size = path.stat().st_size
            total += size
            bill.add(path.stem, "cloudwatch_logs", "log_gb", size / GB, "cloudwatch_logs_ingest_gb")
    return total


# ------------------------------------------------------------------ the bench's keys
def cost_keys(request_log_dir: Path, tickets: int, prices: dict[str, Any] | None = None, *,
              tickets_table: str | None = None, function_logs: Path | None = None,
              gsis: dict[str, list[str]] | None = None, comprehend: dict[str, Any] | None = None) -> dict[str, Any]:
    """`aws_usd_per_million_tickets`, `cost_breakdown` and `cost_vs_floor` for `tickets` stored tickets."""
    prices = prices or load_prices()
    calls, invocations = read_log(request_log_dir)
    if not calls or not invocations:
        raise RuntimeError(f"the request log in {request_log_dir} is empty (was the local cloud started with it on?)")
    tickets_table = tickets_table or _guess_tickets_table(calls)
    bill = Bill(prices)
    facts = price_calls(calls, bill, gsis, tickets_table)
    latencies = prices.get("aws_latency_ms") or {"*": 20}
    # Time in AWS calls (the emulator's latency, not AWS's) inside each invocation, and the same calls
    # at the stated AWS latencies: the Lambda line is billed on the latter.
    waits, aws_waits = {}, {}
    for inv in invocations:
        spans = facts["aws_call_spans"].get(inv["trace"], [])
        waits[inv["trace"]] = 1000 * busy_seconds(spans)
        aws_waits[inv["trace"]] = aws_wait_ms(spans, facts["aws_call_kinds"].get(inv["trace"], []), latencies)

    def with_waits(new: dict[str, float]) -> list[dict[str, Any]]:
        # compute = measured duration - the emulator's waits - the request log's own hook time; + `new` waits
        return [{**i, "duration_ms": max(0.0, float(i.get("duration_ms") or 0) - waits[i["trace"]]
                                         - facts["hook_ms"].get(i["trace"], 0.0)) + new.get(i["trace"], 0.0)}
                for i in invocations]

    emulator = Bill(prices)
    emulator_stats = price_lambda(invocations, emulator)
    lambda_stats = price_lambda(with_waits(aws_waits), bill)
    log_bytes = price_logs(function_logs, {i["function_name"] for i in invocations}, bill)
    total = sum(bill.usd_service.values())
    emulator_total = total - bill.usd_service["lambda"] + emulator.usd_service["lambda"]
    per_million = 1e6 / max(1, tickets)
    floor_wru = facts["ticket_put_wru"]
    if facts["ticket_puts"] > tickets > 0:  # a redelivery rewrote some: the floor writes each ticket once
        floor_wru = floor_wru * tickets / facts["ticket_puts"]
    floor = floor_wru * bill.prices["dynamodb_wru"]
    wait_ms = sum(waits.values())
    busy_ms = sum(float(i.get("duration_ms") or 0) for i in invocations)
    aws_busy_ms = sum(float(i["duration_ms"]) for i in with_waits(aws_waits))
    # A lower bound for Lambda: the same invocations if every AWS call had answered at once.
    compute_only = Bill(prices)
    price_lambda(with_waits({}), compute_only)
    empty_usd = facts["empty_receives"] * bill.prices["sqs_request"]
    breakdown = {
        "tickets": tickets,
        "usd_per_million_by_service": {k: round(v * per_million, 4) for k, v in sorted(bill.usd_service.items(), key=lambda kv: -kv[1])},
        "usd_per_million_by_function": {k: round(v * per_million, 4) for k, v in sorted(bill.usd_function.items(), key=lambda kv: -kv[1])},
        "units_per_ticket": {k: round(v / max(1, tickets), 4) for k, v in sorted(bill.units.items())},
        "wru_per_ticket_by_write": {k: round(v / max(1, tickets), 4) for k, v in sorted(facts["wru_by_write"].items(), key=lambda kv: -kv[1])},
        "floor_usd_per_million": round(floor * per_million, 4),
        "ticket_item_mean_bytes": round(facts["ticket_put_bytes"] / max(1, facts["ticket_puts"]), 1),
        "ticket_item_mean_wru": round(facts["ticket_put_wru"] / max(1, facts["ticket_puts"]), 3),
        "lambda": lambda_stats,
        "lambda_share_of_duration_in_aws_calls": round(wait_ms / busy_ms, 3) if busy_ms else None,
        "lambda_usd_per_million_without_aws_waits": round(sum(compute_only.usd_service.values()) * per_million, 4),
        "request_log_hook_s_not_billed": round(sum(facts["hook_ms"].values()) / 1000, 3),
        "lambda_share_of_duration_in_aws_calls_at_aws_latency": round(sum(aws_waits.values()) / aws_busy_ms, 3) if aws_busy_ms else None,
        "emulator_latency": {
            "usd_per_million_tickets": round(emulator_total * per_million, 4),
            "cost_vs_floor": round(emulator_total / floor, 3) if floor else None,
            "lambda_usd_per_million": round(emulator.usd_service["lambda"] * per_million, 4),
            "lambda": emulator_stats,
            "note": "Lambda billed on the durations measured on the emulator (its waits on moto included); not what cost_vs_floor uses",
        },
        "aws_latency_ms": {k: v for k, v in latencies.items() if k != "note"},
        "function_log_bytes": log_bytes,
        "aws_calls": facts["calls"],
        "aws_calls_by_operation": dict(sorted(facts["calls_by_op"].items())),
        "idle_sqs_empty_receives": facts["empty_receives"],
        "idle_sqs_empty_receives_usd": round(empty_usd, 8),
        "tickets_table": tickets_table,
        "gsis": gsis or {},
        "prices": {"as_of": prices.get("as_of"), "region": prices.get("region"), "file": prices.get("file", str(PRICES.name))},
    }
    if comprehend:
        breakdown["comprehend"] = comprehend
    return {
        "aws_usd_per_million_tickets": round(total * per_million, 4),
        "cost_breakdown": breakdown,
        "cost_vs_floor": round(total / floor, 3) if floor else {"error": "no ticket item was written: no floor"},
    }


def _guess_tickets_table(calls: list[dict[str, Any]]) -> str | None:
    for call in calls:
        for write in call.get("writes") or []:
            if str(write.get("table", "")).endswith("tickets"):
                return write["table"]
    return None


def comprehend_usd_per_million(text_lengths: list[int], prices: dict[str, Any], apis: int = 3) -> dict[str, Any]:
    """The same per-ticket work on Amazon Comprehend: `apis` requests per ticket (DetectSentiment,
    DetectEntities, DetectPiiEntities), each billed in 100-character units with a 3-unit minimum."""
    unit = float(prices["prices"]["comprehend_unit"]["usd"])
    units = [max(3, math.ceil(n / 100)) for n in text_lengths]
    mean_units = sum(units) / max(1, len(units))
    return {"apis_per_ticket": apis, "mean_chars": round(sum(text_lengths) / max(1, len(text_lengths)), 1),
            "mean_units_per_request": round(mean_units, 3), "share_at_3_unit_minimum": round(sum(u == 3 for u in units) / max(1, len(units)), 3),
            "usd_per_million_tickets": round(mean_units * apis * unit * 1e6, 2)}


def e2e_cost(home: Path, status: dict[str, Any], state: dict[str, Any], texts: list[str],
             prices_file: Path | None = None, latencies: dict[str, float] | None = None) -> dict[str, Any]:
    """The three cost keys of the e2e run in a bench home (the local cloud logged to home/requests)."""
    keep = os.environ.get("SUPPORTLENS_BENCH_KEEP_REQUESTS")
    if keep:  # to price the same run again (other prices, new accounting): python -m bench.cost DIR TICKETS
        shutil.copytree(home / "requests", Path(keep) / "requests", dirs_exist_ok=True)
        shutil.copytree(home / "logs", Path(keep) / "logs", dirs_exist_ok=True)
        (Path(keep) / "run.json").write_text(json.dumps({"status": status, "outputs": state.get("outputs") or {}}, default=str))
    try:
        prices = load_prices(prices_file)
        prices["aws_latency_ms"] = {**prices.get("aws_latency_ms", {}), **(latencies or {})}
        tickets = int(status.get("tickets_stored") or 0)
        return cost_keys(home / "requests", tickets, prices, tickets_table=(state.get("outputs") or {}).get("TicketsTableName"),
                         function_logs=home / "logs", gsis=template_gsis(TEMPLATE), comprehend=comprehend_usd_per_million([len(t) for t in texts], prices) if texts else None)
    except Exception as exc:  # the e2e numbers still stand
        error = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
        return {"aws_usd_per_million_tickets": error, "cost_breakdown": error, "cost_vs_floor": error}


def live_sample(source: Path, target: Path, hours: float = 1.0) -> int:
    """The TWCS sample as a live hour would bring it: every tweet, in the same order and threads, its
    created_at squeezed linearly into the last `hours` hours. The upload the bench makes spans 60
    days of 100+ brands, which no chunk of a live stream does; counter rows per chunk follow that."""
    import csv
    from datetime import datetime, timedelta, timezone

    fmt = "%a %b %d %H:%M:%S %z %Y"
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), list(reader)
    stamps = [datetime.strptime(r["created_at"], fmt) for r in rows]
    # By rank, not by linear scale: a few years-old tweets would squeeze the rest into one second.
    rank = {stamp: i for i, stamp in enumerate(sorted(set(stamps)))}
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=hours)
    for row, stamp in zip(rows, stamps):
        row["created_at"] = (start + timedelta(seconds=rank[stamp] / max(1, len(rank)) * hours * 3600)).strftime(fmt)
    with target.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def live_e2e(out: Path | None = None) -> dict[str, Any]:
    """`python -m bench.cost --live-e2e`: the e2e measurement (counted the same way) on `live_sample`."""
    import tempfile

    from bench import gen, run

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        sample = Path(tmp) / "twcs_live_hour.csv"
        live_sample(gen.twcs_source(), sample)
        # Both: the full e2e run reads gen.twcs_source() (the shared TWCS file when present), --quick gen.SAMPLE.
        original, original_source = gen.SAMPLE, gen.twcs_source
        gen.SAMPLE, gen.twcs_source = sample, lambda: sample
        try:
            result = run.bench_e2e(run.Options())
        finally:
            gen.SAMPLE, gen.twcs_source = original, original_source
    result["details"] = result.pop("_details", {})
    if out:
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def main(argv: list[str]) -> int:
    """Price a kept run again: python -m bench.cost DIR [--prices FILE] [--latencies FILE] [--latency KIND=MS ...]
    (DIR from SUPPORTLENS_BENCH_KEEP_REQUESTS; KIND as in aws_prices.json's aws_latency_ms: dynamodb.PutItem, s3.*, *);
    or measure the e2e run on a live hour of the sample: python -m bench.cost --live-e2e [--out FILE]."""
    if argv[:1] == ["--live-e2e"]:
        out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else None
        print(json.dumps(live_e2e(out), default=str))
        return 0
    directory = Path(argv[0])
    prices_file = Path(argv[argv.index("--prices") + 1]) if "--prices" in argv else None
    latencies = json.loads(Path(argv[argv.index("--latencies") + 1]).read_text()) if "--latencies" in argv else {}
    latencies = {k: v for k, v in latencies.items() if k != "note"}
    for i, arg in enumerate(argv):
        if arg == "--latency":
            kind, _, ms = argv[i + 1].partition("=")
            latencies[kind] = float(ms)
    run = json.loads((directory / "run.json").read_text())
    keys = e2e_cost(directory, run["status"], {"outputs": run["outputs"]}, [], prices_file, latencies)
    print(json.dumps(keys, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
