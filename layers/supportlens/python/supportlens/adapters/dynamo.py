"""DynamoDB adapter: ticket writes, exactly-once aggregate increments, lineage records."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .aws import client, parallel_calls

_SER = TypeSerializer()
_DESER = TypeDeserializer()
MARKER_TTL_S = 14 * 24 * 3600
MAX_TRANSACT_ITEMS = 100


def to_dynamo(value: Any) -> Any:
    """Python value -> something TypeSerializer accepts (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(to_dynamo(v)) for k, v in item.items()}


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [from_dynamo(v) for v in value]
    return value


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: from_dynamo(_DESER.deserialize(v)) for k, v in item.items()}


def batch_write(table: str, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem in 25s; UnprocessedItems are retried with backoff until written."""
    ddb = client("dynamodb")
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": serialize(item)}} for item in items[start : start + 25]]
        pending = {table: requests}
        attempt = 0
        while pending:
            response = ddb.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if pending:
                attempt += 1
                if attempt > 12:
                    raise RuntimeError(f"BatchWriteItem left {len(pending[table])} items unprocessed after retries")
                time.sleep(min(2.0, 0.05 * 2**attempt))


CONFLICT_RETRIES = 8


def _conflict_pause(attempt: int) -> None:
    """Backoff before retry `attempt` (0-based) of a write another writer held: 40 ms doubling, at most 1 s."""
    time.sleep(min(1.0, 0.02 * 2 ** (attempt + 1)))

# BatchExecuteStatement's limit: 25 statements per request.
INSERT_BATCH = 25
# Statement errors of a batch that are worth another try (throttles, a transaction holding the item, a
# server error); any other code (ValidationError, AccessDenied, ...) is raised.
RETRYABLE_STATEMENT_ERRORS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
                                        "RequestLimitExceeded", "InternalServerError"})
# Insert batches in flight at once: each is one round trip on AWS (~15 ms); 500 tickets are 20 batches.
INSERT_WORKERS = 8


def insert_statement(table: str, item: dict[str, Any]) -> dict[str, Any]:
    """PartiQL INSERT of one serialized item: it writes only when no item has the key, else the statement
    fails with DuplicateItem (no condition needed, none allowed)."""
    names = ", ".join("'" + name.replace("'", "''") + "': ?" for name in item)
    return {"Statement": f'INSERT INTO "{table}" VALUE {{{names}}}', "Parameters": list(item.values())}


def insert_new(table: str, items: list[dict[str, Any]], key_name: str) -> tuple[set[str], set[str]]:
    """(keys inserted, keys that were there already) of serialized items, 25 INSERTs per
    BatchExecuteStatement. Per-statement errors come back in a 200 answer, so botocore retries none of
    them: throttles and transaction conflicts are retried here with backoff, anything else is raised."""
    ddb = client("dynamodb")
    inserted: set[str] = set()
    existing: set[str] = set()

    def run(group: list[dict[str, Any]]) -> None:
        pending = group
        for attempt in range(CONFLICT_RETRIES + 1):
            answers = ddb.batch_execute_statement(Statements=[insert_statement(table, item) for item in pending])["Responses"]
            again = []
            for item, answer in zip(pending, answers):
                code = (answer.get("Error") or {}).get("Code")
                key = item[key_name]["S"]
                if code is None:
                    inserted.add(key)
                elif code == "DuplicateItem":
                    existing.add(key)
                elif code in RETRYABLE_STATEMENT_ERRORS and attempt < CONFLICT_RETRIES:
                    again.append(item)
                else:  # the code and how many, never the values (they may be PII)
                    raise RuntimeError(f"INSERT into {table} failed: {code} on {sum(1 for a in answers if a.get('Error'))} of {len(answers)} statements")
            if not again:
                return
            pending = again
            _conflict_pause(attempt)

    parallel_calls(run, [items[i : i + INSERT_BATCH] for i in range(0, len(items), INSERT_BATCH)], INSERT_WORKERS)
    return inserted, existing


def put_unless_owned(table: str, items: list[dict[str, Any]], key_name: str, owner_attr: str) -> set[str]:
    """Write each item unless an item with its key exists with another `owner_attr` value; returns
    the keys written (absent before, or already ours: a redelivery). The insert is what makes two
    concurrent writers of one key agree on a single owner (BatchWriteItem takes no conditions): PartiQL
    INSERTs, 25 per request, at a PutItem's price (1 WRU per KB; a transaction costs 2) and with no
    TransactionConflict between chunks that share a ticket. A key that was there already is read
    (strongly consistent, as the owner never changes once written): ours — a redelivery — is rewritten
    as this delivery made it, another owner's is left alone."""
    by_key = {item[key_name]: item for item in items}
    won: set[str] = set()
    pending = list(by_key)
    for _ in range(3):  # a key found and then gone (deleted in between) is inserted again
        inserted, existing = insert_new(table, [serialize(by_key[k]) for k in pending], key_name)
        won |= inserted
        if not existing:
            break
        owners = batch_get(table, key_name, sorted(existing), f"{key_name}, #owner", {"#owner": owner_attr}, consistent=True)
        ours = sorted(k for k in existing if k in owners and owners[k].get(owner_attr) == by_key[k][owner_attr])
        batch_write(table, [by_key[k] for k in ours])
        won.update(ours)
        pending = sorted(k for k in existing if k not in owners)
        if not pending:
            break
    return won


def _cancellation_codes(exc: ClientError) -> list[str] | None:
    """Per-item cancellation codes of a cancelled transaction, None for any other error."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return None
    return [r.get("Code") or "None" for r in exc.response.get("CancellationReasons") or []] or None


def batch_get(table: str, key_name: str, keys: Iterable[str], projection: str,
              names: dict[str, str] | None = None, consistent: bool = False) -> dict[str, dict[str, Any]]:
    """Existing items by key (UnprocessedKeys retried); `names` maps #placeholders in the projection."""
    return {item[key_name]: item for item in batch_get_keys(table, ({key_name: k} for k in keys), projection, names, consistent)}


def batch_get_keys(table: str, keys: Iterable[dict[str, str]], projection: str,
                   names: dict[str, str] | None = None, consistent: bool = False) -> list[dict[str, Any]]:
    """Existing items of a table with a composite (string) key, eventually consistent unless asked (half
    the RRU of a strongly consistent read); UnprocessedKeys retried. 100 keys per request (the API's limit)."""
    ddb = client("dynamodb")
    unique = list({tuple(sorted(k.items())): k for k in keys}.values())
    found: list[dict[str, Any]] = []
    for start in range(0, len(unique), 100):
        request = {table: {"Keys": [{n: {"S": v} for n, v in k.items()} for k in unique[start : start + 100]],
                           "ProjectionExpression": projection, **({"ExpressionAttributeNames": names} if names else {}),
                           **({"ConsistentRead": True} if consistent else {})}}
        attempt = 0
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            found.extend(deserialize(raw) for raw in response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                time.sleep(min(2.0, 0.05 * 2**attempt))
    return found


def apply_increments_once(
    table: str, marker: str, rows: dict[tuple[str, str], dict[str, float]], extra_updates: list[dict[str, Any]] = ()
) -> bool:
    """ADD counters atomically with a marker item, so a redelivered chunk never counts twice.

    Returns False when the marker exists (this chunk was applied before). More rows than one
    transaction holds are split into parts, each with its own marker.
    """
    updates = [_add_update(table, pk, sk, counters) for (pk, sk), counters in sorted(rows.items())]
    updates.extend(extra_updates)
    per_part = MAX_TRANSACT_ITEMS - 1
    parts = [updates[i : i + per_part] for i in range(0, len(updates), per_part)] or [[]]
    applied_any = False
    for number, part in enumerate(parts):
        marker_key = marker if len(parts) == 1 else f"{marker}#part{number}"
        marker_put = {
            "Put": {
                "TableName": table,
                "Item": serialize({"pk": "marker", "sk": marker_key, "expires_at": int(time.time()) + MARKER_TTL_S}),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        applied_any = _transact_once(marker_put, part) or applied_any
    return applied_any


def _transact_once(marker_put: dict[str, Any], part: list[dict[str, Any]]) -> bool:
    """The marker's transaction: True when applied, False when the marker was already there."""
    for conflicts in range(CONFLICT_RETRIES + 1):
        try:
            client("dynamodb").transact_write_items(TransactItems=[marker_put, *part])
            return True
        except ClientError as exc:
            codes = _cancellation_codes(exc) or []
            if codes[:1] == ["ConditionalCheckFailed"]:
                return False  # this part was applied by an earlier (or a concurrent) delivery
            # Two chunks adding to one counter row at the same moment: AWS cancels one of them.
            if "TransactionConflict" not in codes or conflicts == CONFLICT_RETRIES:
                raise
            _conflict_pause(conflicts)
    return False


def _add_update(table: str, pk: str, sk: str, counters: dict[str, Any]) -> dict[str, Any]:
    """ADD the numbers; a set (example ticket ids) is SET only where the row has none yet: ADDed,
    a hot row's sets grew with every chunk past the 400 KB item limit (bench/hotkeys.py)."""
    order = sorted(counters)
    names = {f"#c{i}": name for i, name in enumerate(order)}
    values = {f":v{i}": _SER.serialize(to_dynamo(counters[name])) for i, name in enumerate(order)}
    sets = [i for i, name in enumerate(order) if isinstance(counters[name], (set, frozenset))]
    adds = [i for i in range(len(order)) if i not in sets]
    expression = " ".join(part for part in (
        "SET " + ", ".join(f"#c{i} = if_not_exists(#c{i}, :v{i})" for i in sets) if sets else "",
        "ADD " + ", ".join(f"#c{i} :v{i}" for i in adds) if adds else "") if part)
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def lineage_add(table: str, file_id: str, counters: dict[str, int]) -> dict[str, Any]:
    """A transaction Update that adds to a file's lineage counters."""
    names = {f"#c{i}": name for i, name in enumerate(counters)}
    values = {f":v{i}": {"N": str(v)} for i, v in enumerate(counters.values())}
    values[":now"] = {"S": datetime.now(timezone.utc).isoformat()}
    return {
        "Update": {
            "TableName": table,
            "Key": {"file_id": {"S": file_id}},
            "UpdateExpression": "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(names))) + " SET updated_at = :now",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _conditional(method: str, **request: Any) -> bool:
    """Call a conditional DynamoDB write: True when written, False when its condition did not hold."""
    try:
        getattr(client("dynamodb"), method)(**request)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def put_if_absent(table: str, item: dict[str, Any], key_name: str) -> bool:
    return _conditional("put_item", TableName=table, Item=serialize(item),
                        ConditionExpression=f"attribute_not_exists({key_name})")


def get(table: str, key: dict[str, str]) -> dict[str, Any] | None:
    response = client("dynamodb").get_item(
        TableName=table, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
    )
    return deserialize(response["Item"]) if "Item" in response else None


def update_fields(table: str, key: dict[str, str], fields: dict[str, Any]) -> None:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": _SER.serialize(to_dynamo(v)) for i, v in enumerate(fields.values())}
    client("dynamodb").update_item(
        TableName=table,
        Key={k: {"S": v} for k, v in key.items()},
        UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def scan_all(table: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client("dynamodb").get_paginator("scan").paginate(TableName=table, **kwargs):
        items.extend(deserialize(i) for i in page.get("Items", []))
    return items


def query_pk(table: str, pk: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    paginator = client("dynamodb").get_paginator("query")
    for page in paginator.paginate(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    ):
        items.extend(deserialize(i) for i in page.get("Items", []))
    return items


def query_sk_from(table: str, pk: str, sk_from: str) -> list[dict[str, Any]]:
    """Items of one partition with sk >= sk_from, read consistently (right after our own writes)."""
    items: list[dict[str, Any]] = []
    paginator = client("dynamodb").get_paginator("query")
    for page in paginator.paginate(
        TableName=table, KeyConditionExpression="pk = :pk AND sk >= :from", ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"S": pk}, ":from": {"S": sk_from}},
    ):
        items.extend(deserialize(i) for i in page.get("Items", []))
    return items


def put_unless_cooling_down(table: str, key_name: str, guard: dict[str, Any], item: dict[str, Any], cutoff_epoch: int,
                            claim_attr: str = "last_alert", seen: dict[str, tuple[int, str]] | None = None) -> bool:
    """Claim the guard item (absent, or last claimed at/before `cutoff_epoch`), then store `item`
    (absent). False when the guard is cooling down for another item or `item` exists already.

    Two conditional PutItems, not a transaction: a transactional write costs twice the WRU. A crash
    between the two leaves the guard claimed for `item` (its `claim_attr` holds item's key): a retry
    finds that, does not claim again (which would restart the cooldown) and stores the item, so
    exactly one of any number of deliveries stores it and gets True. `seen`, when given, learns
    (raised_epoch, claim) of the guard as this call found or left it, keyed by the guard's key."""
    request = dict(TableName=table, Item=serialize(guard), ReturnValuesOnConditionCheckFailure="ALL_OLD",
                   ConditionExpression=f"attribute_not_exists({key_name}) OR raised_epoch <= :cutoff",
                   ExpressionAttributeValues={":cutoff": {"N": str(int(cutoff_epoch))}})
    try:
        client("dynamodb").put_item(**request)
        held = request["Item"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        held = exc.response.get("Item") or {}
    if seen is not None and "raised_epoch" in held and claim_attr in held:
        seen[str(guard[key_name])] = (int(held["raised_epoch"]["N"]), held[claim_attr]["S"])
    if held.get(claim_attr) != {"S": str(item[key_name])}:
        return False  # cooling down after another alert
    return put_if_absent(table, item, key_name)
