"""AWS request log: one JSON line per API call a function (or an event-source poller) makes.

Off by default. When the local cloud is started with SUPPORTLENS_LOCAL_REQUEST_LOG=<dir>, every
function worker starts through this file (``python request_log.py <handler>``), which registers
botocore event hooks on every botocore session the handler creates and then runs awslambdaric
as usual. The bench turns the log into a bill (bench/cost.py).

A line holds what AWS bills by: service, operation, table/queue/bucket, payload and item sizes,
item counts, consumed capacity if the emulator returned it, the error code. Never an item's
values, a message body, an object key or a ticket id: key attributes and counter names appear
only as short hashes (to tell one item's successive updates apart), sizes as numbers.

Calls are tagged with the invocation they belong to (the X-Ray trace id Lambda hands each
invocation; the Lambda service writes which trace id each invocation had, with its duration, to
invocations.jsonl in the same directory).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

ENV = "SUPPORTLENS_LOCAL_REQUEST_LOG"
CALLS_DIR = "calls"
INVOCATIONS = "invocations.jsonl"


class RequestLog:
    """Appends one line per call to <dir>/calls/<source>.<pid>.jsonl (O_APPEND, line at a time)."""

    def __init__(self, directory: Path, source: str) -> None:
        calls = Path(directory) / CALLS_DIR
        calls.mkdir(parents=True, exist_ok=True)
        self.source = source
        self.path = calls / f"{_safe(source)}.{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")

    # --- botocore hooks -----------------------------------------------------------------
    def register(self, events: Any) -> None:
        """Hook a botocore session's (or one client's) event emitter."""
        events.register("provide-client-params", self._before, unique_id="supportlens-request-log-params")
        events.register("after-call", self._after, unique_id="supportlens-request-log-after")
        events.register("after-call-error", self._failed, unique_id="supportlens-request-log-error")

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["_supportlens_started"] = time.perf_counter()
        try:
            context["_supportlens_request"] = describe_request(model.service_model.service_name, model.name, params)
        except Exception as exc:  # accounting must never break the call it watches
            context["_supportlens_request"] = {"describe_error": type(exc).__name__}

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        hook_started = time.perf_counter()
        try:
            record = self._base(model, context)
            record["status"] = getattr(http_response, "status_code", None)
            started = context.get("_supportlens_started")
            if started is not None:  # this call's latency (with retries): time the handler spent waiting
                record["ms"] = round((time.perf_counter() - started) * 1000, 2)
            error = (parsed or {}).get("Error") or {}
            if error.get("Code"):
                record["error"] = error["Code"]
            record.update(describe_response(record["svc"], record["op"], parsed or {}, record))
            # This hook's own time after the call: the function's duration holds it, AWS would not (bench/cost.py)
            record["hook_ms"] = round((time.perf_counter() - hook_started) * 1000, 3)
            self.write(record)
        except Exception:
            pass

    def _failed(self, exception: Exception, context: dict[str, Any], **kwargs: Any) -> None:
        # No HTTP answer (connection refused/reset): AWS bills nothing, but say it happened.
        try:
            self.write({"t": round(time.time(), 3), "src": self.source, "trace": _trace_root(),
                        "req": context.get("_supportlens_request", {}), "error": type(exception).__name__, "status": None})
        except Exception:
            pass

    def _base(self, model: Any, context: dict[str, Any]) -> dict[str, Any]:
        return {"t": round(time.time(), 3), "src": self.source, "trace": _trace_root(),
                "svc": model.service_model.service_name, "op": model.name,
                **context.get("_supportlens_request", {})}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "unknown"


def _trace_root() -> str:
    # awslambdaric sets _X_AMZN_TRACE_ID for each invocation; our Lambda service makes it unique.
    trace = os.environ.get("_X_AMZN_TRACE_ID", "")
    for part in trace.split(";"):
        if part.startswith("Root="):
            return part[5:]
    return ""


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


# ------------------------------------------------------------------ DynamoDB item sizes
def value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one typed attribute value (low-level client format).

    From the Developer Guide's "Item sizes and formats": strings and binaries by their length
    (UTF-8), numbers about 1 byte per 2 significant digits + 1, booleans and nulls 1 byte,
    lists and maps 3 bytes + 1 byte per element + their contents, sets the sum of their elements."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8", "surrogatepass"))
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return len(inner) if isinstance(inner, (bytes, bytearray)) else len(str(inner).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8", "surrogatepass")) for s in inner)
    if kind == "NS":
        return sum(number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8", "surrogatepass")) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def number_size(text: Any) -> int:
    digits = str(text).lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return (max(1, len(digits)) + 1) // 2 + 1


def item_size(item: dict[str, Any]) -> int:
    """An item's size: attribute names (UTF-8 bytes) plus their values."""
    return sum(len(name.encode("utf-8", "surrogatepass")) + value_size(v) for name, v in item.items())


def _attr_sizes(item: dict[str, Any]) -> dict[str, int]:
    return {_h(name): len(name.encode("utf-8", "surrogatepass")) + value_size(v) for name, v in item.items()}


def _update_attrs(request: dict[str, Any]) -> dict[str, int]:
    """Attributes an UpdateExpression writes (SET a = :v, ADD b :w), hashed name -> size."""
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    expression = request.get("UpdateExpression") or ""
    out: dict[str, int] = {}
    for clause in re.split(r"\b(?=SET\b|ADD\b|REMOVE\b|DELETE\b)", expression):
        clause = clause.strip()
        if not clause or clause.startswith("REMOVE"):
            continue
        verb, _, body = clause.partition(" ")
        for part in body.split(","):
            part = part.strip()
            if verb == "SET":
                target, _, source = part.partition("=")
            else:
                target, _, source = part.partition(" ")
            target = names.get(target.strip(), target.strip())
            refs = re.findall(r":[A-Za-z0-9_]+", source)
            size = max((value_size(values[r]) for r in refs if r in values), default=1)
            out[_h(target)] = len(target.encode()) + size
    return out


_ROW_KIND = re.compile(r"[a-z_]{1,24}")


def _row_kind(item: dict[str, Any]) -> str | None:
    """The fixed word before '#' in a single-table pk ('customer', 'complaint', 'day', 'marker'),
    for the bill's breakdown; never the id after it."""
    pk = (item.get("pk") or {}).get("S")
    if not isinstance(pk, str):
        return None
    word = pk.split("#", 1)[0]
    return word if _ROW_KIND.fullmatch(word) else None


_INSERT = re.compile(r"""\s*INSERT\s+INTO\s+"([^"]+)"\s+VALUE\s+\{((?:\s*'(?:[^']|'')*'\s*:\s*\?\s*,)*\s*'(?:[^']|'')*'\s*:\s*\?\s*)\}\s*""",
                     re.IGNORECASE)
_INSERT_NAME = re.compile(r"'((?:[^']|'')*)'\s*:\s*\?")


def insert_shape(statement: Any) -> tuple[str, list[str]] | None:
    """(table, attribute names) of a PartiQL `INSERT INTO "table" VALUE {'name': ?, ...}`; None for any
    other statement. (The emulator's fast INSERT path reads statements with this too.)"""
    match = _INSERT.fullmatch(statement) if type(statement) is str else None
    if match is None:
        return None
    return match.group(1), [name.replace("''", "'") for name in _INSERT_NAME.findall(match.group(2))]


def _write_request(kind: str, table: str, body: dict[str, Any]) -> dict[str, Any]:
    """One item write of a BatchWriteItem or a transaction, described by size only."""
    if kind == "Put":
        return {"k": "put", "table": table, "size": item_size(body["Item"]), "cond": "ConditionExpression" in body,
                "row": _row_kind(body["Item"])}
    key = body.get("Key") or {}
    described = {"table": table, "key": _h(json.dumps(key, sort_keys=True, default=str)), "key_size": item_size(key),
                 "cond": "ConditionExpression" in body, "row": _row_kind(key)}
    if kind == "Update":
        return {"k": "update", **described, "attrs": _update_attrs(body)}
    if kind == "Delete":
        return {"k": "delete", **described}
    return {"k": "check", **described}  # ConditionCheck


def describe_request(service: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
    if service == "dynamodb":
        return _dynamodb_request(op, params)
    if service == "sqs":
        queue = (params.get("QueueUrl") or "").rsplit("/", 1)[-1]
        out: dict[str, Any] = {"queue": queue}
        if op == "SendMessage":
            out["payloads"] = [_sqs_payload(params)]
        elif op == "SendMessageBatch":
            out["payloads"] = [_sqs_payload(e) for e in params.get("Entries", [])]
        elif op in ("DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
            out["entries"] = len(params.get("Entries", []))
        elif op == "ReceiveMessage":
            out["wait_s"] = params.get("WaitTimeSeconds", 0)
        return out
    if service == "s3":
        out = {"bucket": params.get("Bucket", ""), "prefix": str(params.get("Key") or params.get("Prefix") or "").split("/", 1)[0]}
        body = params.get("Body")
        if isinstance(body, (bytes, bytearray)):
            out["bytes"] = len(body)
        if op == "DeleteObjects":
            out["objects"] = len((params.get("Delete") or {}).get("Objects", []))
        return out
    if service == "sns":
        message = params.get("Message") or ""
        return {"topic": str(params.get("TopicArn") or "").rsplit(":", 1)[-1],
                "bytes": len(message.encode("utf-8", "surrogatepass")) if isinstance(message, str) else 0,
                "entries": len(params.get("PublishBatchRequestEntries") or []) or 1}
    if service in ("ses", "sesv2"):
        raw = ((params.get("RawMessage") or {}).get("Data")
               or ((params.get("Content") or {}).get("Raw") or {}).get("Data") or b"")
        dest = params.get("Destinations") or params.get("Destination") or {}
        if isinstance(dest, dict):
            recipients = sum(len(dest.get(k) or []) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
        else:
            recipients = len(dest)
        return {"bytes": len(raw) if isinstance(raw, (bytes, bytearray, str)) else 0, "recipients": max(1, recipients)}
    return {}


def _sqs_payload(entry: dict[str, Any]) -> int:
    return _sqs_size(entry.get("MessageBody"), entry.get("MessageAttributes"))


def _sqs_size(body: str | None, attributes: dict[str, Any] | None) -> int:
    """Message body plus its attributes (name, type and value count toward the 256 KiB and the 64 KB units)."""
    size = len((body or "").encode("utf-8", "surrogatepass"))
    for name, attr in (attributes or {}).items():
        value = attr.get("StringValue") or attr.get("BinaryValue") or b""
        size += len(name) + len(attr.get("DataType", "")) + len(value if isinstance(value, (bytes, bytearray)) else str(value).encode())
    return size


def _dynamodb_request(op: str, params: dict[str, Any]) -> dict[str, Any]:
    table = params.get("TableName", "")
    if op == "PutItem":
        return {"writes": [_write_request("Put", table, params)]}
    if op == "UpdateItem":
        return {"writes": [_write_request("Update", table, params)]}
    if op == "DeleteItem":
        return {"writes": [_write_request("Delete", table, params)]}
    if op == "BatchWriteItem":
        writes = []
        for name, requests in (params.get("RequestItems") or {}).items():
            for r in requests:
                if "PutRequest" in r:
                    item = r["PutRequest"]["Item"]
                    writes.append({"k": "put", "table": name, "size": item_size(item), "cond": False, "row": _row_kind(item)})
                else:
                    key = r["DeleteRequest"]["Key"]
                    writes.append({"k": "delete", "table": name, "key_size": item_size(key), "cond": False, "row": _row_kind(key)})
        return {"writes": writes}
    if op == "BatchExecuteStatement":  # INSERTs: conditional puts, 1 WRU per KB each as PutItem
        writes = []
        for position, statement in enumerate(params.get("Statements") or []):
            shape = insert_shape(statement.get("Statement"))
            if shape is not None:  # "statement": its answer's position in the response (other statements are not priced)
                item = dict(zip(shape[1], statement.get("Parameters") or []))
                writes.append({"k": "put", "table": shape[0], "size": item_size(item), "cond": True, "row": _row_kind(item),
                               "statement": position})
        return {"writes": writes}
    if op == "TransactWriteItems":
        writes = []
        for entry in params.get("TransactItems") or []:
            (kind, body), = entry.items()
            writes.append(_write_request(kind, body.get("TableName", ""), body))
        return {"writes": writes, "transaction": True}
    if op == "GetItem":
        return {"table": table, "consistent": bool(params.get("ConsistentRead"))}
    if op == "BatchGetItem":
        return {"keys": {name: {"n": len(spec.get("Keys", [])), "consistent": bool(spec.get("ConsistentRead"))}
                         for name, spec in (params.get("RequestItems") or {}).items()}}
    if op == "TransactGetItems":
        return {"gets": len(params.get("TransactItems") or []), "transaction": True}
    if op in ("Query", "Scan"):
        return {"table": table, "index": params.get("IndexName"), "consistent": bool(params.get("ConsistentRead"))}
    return {"table": table}


def describe_response(service: str, op: str, parsed: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if service == "dynamodb":
        if "ConsumedCapacity" in parsed:
            out["consumed"] = parsed["ConsumedCapacity"]  # what the emulator says (moto: fixed values)
        if op == "GetItem":
            out["sizes"] = [item_size(parsed["Item"])] if "Item" in parsed else []
        elif op == "BatchGetItem":
            out["sizes"] = {name: [item_size(i) for i in items] for name, items in (parsed.get("Responses") or {}).items()}
            out["unprocessed"] = {name: len(spec.get("Keys", [])) for name, spec in (parsed.get("UnprocessedKeys") or {}).items()}
        elif op == "TransactGetItems":
            out["sizes"] = [item_size(r["Item"]) for r in parsed.get("Responses") or [] if "Item" in r]
        elif op in ("Query", "Scan"):
            out["sizes"] = [item_size(i) for i in parsed.get("Items") or []]
            out["scanned"] = parsed.get("ScannedCount", len(out["sizes"]))
        elif op == "BatchWriteItem":
            unprocessed = []
            for name, requests in (parsed.get("UnprocessedItems") or {}).items():
                for r in requests:
                    if "PutRequest" in r:
                        unprocessed.append({"table": name, "size": item_size(r["PutRequest"]["Item"])})
            out["unprocessed"] = unprocessed
        elif op == "UpdateItem" and "Attributes" in parsed:
            out["after_size"] = item_size(parsed["Attributes"])
        elif op == "BatchExecuteStatement":
            out["statement_errors"] = [(r.get("Error") or {}).get("Code") for r in parsed.get("Responses") or []]
        elif op == "TransactWriteItems" and parsed.get("CancellationReasons"):
            out["reasons"] = [r.get("Code") or "None" for r in parsed["CancellationReasons"]]
    elif service == "sqs":
        if op == "ReceiveMessage":
            messages = parsed.get("Messages") or []
            out["received"] = [_received_size(m) for m in messages]
        elif op in ("SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
            out["failed"] = len(parsed.get("Failed") or [])
    elif service == "s3" and op == "GetObject":
        out["bytes"] = parsed.get("ContentLength")
    return out


def _received_size(message: dict[str, Any]) -> int:
    return _sqs_size(message.get("Body"), message.get("MessageAttributes"))


# ------------------------------------------------------------------ installing
def install_in_process(directory: Path, source: str) -> RequestLog:
    """Hook every botocore session created from now on in this process (boto3 sessions included)."""
    import botocore.session

    log = RequestLog(directory, source)
    original = botocore.session.Session.__init__
    if getattr(original, "_supportlens_request_log", False):
        return log

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        log.register(self.get_component("event_emitter"))

    init._supportlens_request_log = True  # type: ignore[attr-defined]
    botocore.session.Session.__init__ = init  # type: ignore[method-assign]
    return log


def bootstrap_command(python: str, handler: str) -> list[str]:
    """The worker command that runs awslambdaric with the request log installed."""
    return [python, str(Path(__file__).resolve()), handler]


def main(argv: list[str]) -> None:
    # Run as a script: drop this file's directory from sys.path so its modules (cli.py,
    # template.py, ...) never shadow the handler's imports, install the hooks, start the runtime.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if not p or str(Path(p).resolve()) != here]
    directory = os.environ.get(ENV)
    if directory:
        install_in_process(Path(directory), os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function"))
    from awslambdaric.__main__ import main as runtime_main

    runtime_main(["awslambdaric", *argv[1:]])


if __name__ == "__main__":
    main(sys.argv)
