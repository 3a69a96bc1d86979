"""The cost arithmetic of bench/cost.py and the request descriptions of infra/localcloud/request_log.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cost
from localcloud import request_log as rl
from supportlens.adapters.dynamo import serialize


def test_write_units_round_each_item_up_to_a_kb_and_transactions_double():
    assert [cost.wru(n) for n in (0, 1, 1024, 1025, 4096, 4097)] == [1, 1, 1, 2, 4, 5]
    assert cost.wru(1025, transactional=True) == 4
    assert cost.wru(10, transactional=True) == 2


def test_read_units_round_to_4_kb_half_for_eventual_double_for_transactions():
    assert cost.rru(4096, consistent=True) == 1.0
    assert cost.rru(4097, consistent=True) == 2.0
    assert cost.rru(4097) == 1.0  # eventually consistent: half
    assert cost.rru(10) == 0.5
    assert cost.rru(4097, transactional=True) == 4.0


def test_sqs_bills_started_64_kb_chunks_with_a_minimum_of_one():
    assert [cost.sqs_units(n) for n in (0, 1, 65536, 65537, 262144)] == [1, 1, 1, 2, 4]


def test_gb_seconds_round_up_to_the_millisecond_at_the_memory_size():
    assert cost.gb_seconds(1000.2, 1024) == pytest.approx(1.001)
    assert cost.gb_seconds(500, 1769) == pytest.approx(0.5 * 1769 / 1024)


def test_gsi_adds_the_projected_item():
    assert cost.gsi_wru(3000, "ALL") == 3
    assert cost.gsi_wru(3000, "KEYS_ONLY", key_size=40) == 1
    assert cost.gsi_wru(3000, "ALL", transactional=True) == 6


def test_item_size_follows_dynamodbs_rules():
    assert rl.item_size({"pk": {"S": "abc"}}) == 5  # name + UTF-8 bytes
    assert rl.item_size({"é": {"S": "é"}}) == 4
    assert rl.item_size({"n": {"N": "12345"}}) == 1 + 4  # 5 significant digits: 3 bytes + 1
    assert rl.item_size({"b": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert rl.item_size({"m": {"M": {"ab": {"S": "xyz"}}}}) == 1 + 3 + 1 + 2 + 3
    assert rl.item_size({"l": {"L": [{"S": "a"}, {"N": "1"}]}}) == 1 + 3 + (1 + 1) + (1 + 2)
    assert rl.item_size({"bin": {"B": b"\x00" * 10}}) == 13
    big = serialize({"ticket_id": "t1", "text": "x" * 2000})
    assert rl.item_size(big) == len("ticket_id") + 2 + len("text") + 2000


def _call(op: str, params: dict, parsed: dict | None = None, svc: str = "dynamodb", src: str = "fn", error: str | None = None) -> dict:
    record = {"svc": svc, "op": op, "src": src, "status": 400 if error else 200, "trace": "t1",
              **rl.describe_request(svc, op, params)}
    record.update(rl.describe_response(svc, op, parsed or {}, record))
    if error:
        record["error"] = error
    return record


def _bill() -> cost.Bill:
    return cost.Bill(cost.load_prices())


def test_a_transaction_costs_twice_the_same_puts_and_a_conditional_failure_still_costs():
    item = serialize({"ticket_id": "t1", "chunk_id": "c1", "text": "y" * 1500})  # ~1.5 KB: 2 WRU
    put = {"TableName": "x-tickets", "Item": item, "ConditionExpression": "attribute_not_exists(ticket_id)"}
    bill = _bill()
    facts = cost.price_calls([_call("TransactWriteItems", {"TransactItems": [{"Put": put}, {"Put": put}]})], bill, tickets_table="x-tickets")
    assert bill.units["dynamodb_wru"] == 8
    assert facts["ticket_put_wru"] == 4  # the floor: the same two items written once, plainly
    bill = _bill()
    cost.price_calls([_call("PutItem", put), _call("PutItem", put, error="ConditionalCheckFailedException")], bill)
    assert bill.units["dynamodb_wru"] == 4
    bill = _bill()
    cost.price_calls([_call("PutItem", put, error="ValidationException")], bill)
    assert bill.units["dynamodb_wru"] == 0


def test_batch_write_skips_unprocessed_items_and_gsis_add_their_writes():
    small, large = serialize({"pk": "a", "v": "z" * 100}), serialize({"pk": "b", "v": "z" * 3000})
    params = {"RequestItems": {"agg": [{"PutRequest": {"Item": small}}, {"PutRequest": {"Item": large}}]}}
    bill = _bill()
    cost.price_calls([_call("BatchWriteItem", params, {"UnprocessedItems": {"agg": [{"PutRequest": {"Item": large}}]}})], bill)
    assert bill.units["dynamodb_wru"] == 1
    bill = _bill()
    cost.price_calls([_call("BatchWriteItem", params)], bill, gsis={"agg": ["ALL"]})
    assert bill.units["dynamodb_wru"] == (1 + 3) * 2


def test_an_update_is_billed_on_the_items_size_after_it_including_earlier_updates():
    def add(names: list[str]) -> dict:
        return {"TableName": "agg", "Key": {"pk": {"S": "day#1"}, "sk": {"S": "c"}},
                "UpdateExpression": "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(names))),
                "ExpressionAttributeNames": {f"#c{i}": n for i, n in enumerate(names)},
                "ExpressionAttributeValues": {f":v{i}": {"N": "1"} for i in range(len(names))}}
    first = [f"counter_{i:03d}" for i in range(60)]  # 60 x (11 + 2) bytes: under 1 KB
    second = [f"counter_{i:03d}" for i in range(60, 120)]  # together: over 1 KB
    bill = _bill()
    cost.price_calls([_call("UpdateItem", add(first)), _call("UpdateItem", add(second)), _call("UpdateItem", add(first))], bill)
    assert bill.units["dynamodb_wru"] == 1 + 2 + 2


def test_reads_queries_and_batch_gets():
    item = serialize({"pk": "a", "v": "z" * 5000})  # 5 KB: 2 x 4 KB
    bill = _bill()
    cost.price_calls([
        _call("GetItem", {"TableName": "t", "Key": {}, "ConsistentRead": True}, {"Item": item}),  # 2
        _call("GetItem", {"TableName": "t", "Key": {}}, {}),  # missing, eventual: 0.5
        _call("Query", {"TableName": "t", "ConsistentRead": True}, {"Items": [item, item], "ScannedCount": 2}),  # 10 KB: 3
        _call("BatchGetItem", {"RequestItems": {"t": {"Keys": [{}, {}, {}]}}}, {"Responses": {"t": [item]}}),  # 1 + 0.5 + 0.5
    ], bill)
    assert bill.units["dynamodb_rru"] == 2 + 0.5 + 3 + 2


def test_sqs_requests_count_payload_chunks_and_empty_receives_apart():
    body = "q" * 40_000
    bill = _bill()
    facts = cost.price_calls([
        _call("SendMessageBatch", {"QueueUrl": "http://x/q", "Entries": [{"MessageBody": body}, {"MessageBody": body}]}, svc="sqs"),  # 80 KB: 2
        _call("ReceiveMessage", {"QueueUrl": "http://x/q"}, {"Messages": [{"Body": body}]}, svc="sqs"),  # 1
        _call("ReceiveMessage", {"QueueUrl": "http://x/q"}, {}, svc="sqs"),  # empty: apart
        _call("DeleteMessageBatch", {"QueueUrl": "http://x/q", "Entries": [{}, {}]}, svc="sqs"),  # 1
    ], bill)
    assert bill.units["sqs_requests"] == 4
    assert facts["empty_receives"] == 1


def test_descriptions_hold_sizes_never_values():
    secret = "jane.doe@example.com called about card 4111 1111 1111 1111"
    item = serialize({"ticket_id": "twcs:secret-id-77", "text": secret, "chunk_id": "file#chunk1"})
    records = [
        rl.describe_request("dynamodb", "PutItem", {"TableName": "t", "Item": item, "ConditionExpression": "x"}),
        rl.describe_request("dynamodb", "UpdateItem", {"TableName": "t", "Key": {"pk": {"S": "customer#secret-id-77"}},
                                                      "UpdateExpression": "SET #a = :v", "ExpressionAttributeNames": {"#a": "note"},
                                                      "ExpressionAttributeValues": {":v": {"S": secret}}}),
        rl.describe_request("sqs", "SendMessage", {"QueueUrl": "http://q/tickets", "MessageBody": secret}),
        rl.describe_request("s3", "PutObject", {"Bucket": "b", "Key": "quarantine/secret-id-77.jsonl", "Body": secret.encode()}),
        rl.describe_response("dynamodb", "Query", {"Items": [item]}, {}),
        rl.describe_response("sqs", "ReceiveMessage", {"Messages": [{"Body": secret}]}, {}),
    ]
    text = json.dumps(records)
    for value in ("jane", "4111", "secret-id-77", "quarantine/secret"):
        assert value not in text
    assert records[0]["writes"][0]["size"] == rl.item_size(item)


def test_cost_keys_and_the_floor_from_a_log_directory(tmp_path: Path):
    calls = tmp_path / "calls"
    calls.mkdir()
    item = serialize({"ticket_id": "t", "chunk_id": "c", "text": "w" * 1500})  # 2 WRU plain
    put = {"TableName": "dev-tickets", "Item": item, "ConditionExpression": "attribute_not_exists(ticket_id)"}
    lines = [_call("TransactWriteItems", {"TransactItems": [{"Put": put}] * 10}, src="dev-enrich") for _ in range(10)]
    # Ten calls of 100 ms each, one after the other: the whole 1 s invocation waited on AWS.
    (calls / "dev-enrich.1.jsonl").write_text("".join(json.dumps({**c, "t": i + 1, "ms": 100}) + "\n" for i, c in enumerate(lines)))
    (tmp_path / "invocations.jsonl").write_text(json.dumps(
        {"function": "Enrich", "function_name": "dev-enrich", "memory_mb": 1024, "trace": "t1", "duration_ms": 1000, "init_ms": 0}) + "\n")
    keys = cost.cost_keys(tmp_path, tickets=100, tickets_table="dev-tickets")
    wru_usd = 0.625e-6
    floor = 100 * 2 * wru_usd
    measured = 2 * floor + 0.20e-6 + 1.0 * 0.0000166667
    # At AWS latency the ten 100 ms transactions take the table's 25 ms each: 250 ms billed, not 1 s.
    total = 2 * floor + 0.20e-6 + 0.25 * 0.0000166667
    assert keys["cost_breakdown"]["floor_usd_per_million"] == pytest.approx(floor * 1e4, rel=1e-3)
    assert keys["aws_usd_per_million_tickets"] == pytest.approx(total * 1e4, rel=1e-3)
    assert keys["cost_vs_floor"] == pytest.approx(total / floor, rel=1e-3)
    emulator = keys["cost_breakdown"]["emulator_latency"]
    assert emulator["usd_per_million_tickets"] == pytest.approx(measured * 1e4, rel=1e-3)
    assert emulator["cost_vs_floor"] == pytest.approx(measured / floor, rel=1e-3)
    assert keys["cost_breakdown"]["lambda_share_of_duration_in_aws_calls_at_aws_latency"] == pytest.approx(1.0)
    slow = cost.load_prices()
    slow["aws_latency_ms"]["dynamodb.TransactWriteItems"] = 100  # as slow as the emulator: both bills agree
    assert cost.cost_keys(tmp_path, tickets=100, prices=slow, tickets_table="dev-tickets")["aws_usd_per_million_tickets"] == \
        pytest.approx(measured * 1e4, rel=1e-3)
    assert set(keys["cost_breakdown"]["usd_per_million_by_function"]) == {"dev-enrich"}
    assert keys["cost_breakdown"]["lambda_share_of_duration_in_aws_calls"] == pytest.approx(1.0)
    assert keys["cost_breakdown"]["lambda_usd_per_million_without_aws_waits"] == pytest.approx(0.20e-6 * 1e4, rel=1e-3)
    with pytest.raises(RuntimeError, match="empty"):
        cost.cost_keys(tmp_path / "nothing", tickets=1)


def test_the_request_logs_own_hook_time_is_not_billed(tmp_path: Path):
    """The bench's request log runs inside the function (≈ 12 s of Enrich's compute in a 50k run): AWS
    would not run it, so its measured time (`hook_ms`) is taken off the compute."""
    calls = tmp_path / "calls"
    calls.mkdir()
    item = serialize({"ticket_id": "t", "chunk_id": "c", "text": "w"})
    line = _call("PutItem", {"TableName": "dev-tickets", "Item": item}, src="dev-enrich")
    (calls / "dev-enrich.1.jsonl").write_text(json.dumps({**line, "t": 1, "ms": 100, "hook_ms": 200}) + "\n")
    (tmp_path / "invocations.jsonl").write_text(json.dumps(
        {"function": "Enrich", "function_name": "dev-enrich", "memory_mb": 1024, "trace": "t1", "duration_ms": 1000, "init_ms": 0}) + "\n")
    keys = cost.cost_keys(tmp_path, tickets=1, tickets_table="dev-tickets")
    # 1,000 ms measured - 100 ms waiting on the emulator - 200 ms in the hook = 700 ms of the function's own
    assert keys["cost_breakdown"]["lambda_usd_per_million_without_aws_waits"] == pytest.approx(
        (0.20e-6 + 0.7 * 0.0000166667) * 1e6, rel=1e-3)
    assert keys["cost_breakdown"]["request_log_hook_s_not_billed"] == 0.2


def test_a_users_price_file_overrides_the_table(tmp_path: Path):
    own = tmp_path / "prices.json"
    own.write_text(json.dumps({"as_of": "2030-01-01", "prices": {"dynamodb_wru": {"usd": 1.0}}}))
    table = cost.load_prices(own)
    assert table["prices"]["dynamodb_wru"]["usd"] == 1.0 and table["as_of"] == "2030-01-01"
    assert table["prices"]["dynamodb_rru"]["usd"] == 0.125e-6  # the rest from the repo's table
    every = cost.load_prices()["prices"]
    assert all("source" in p and "checked" in p for p in every.values())


def test_comprehend_bills_100_character_units_with_a_3_unit_minimum():
    prices = cost.load_prices()
    result = cost.comprehend_usd_per_million([50, 300, 301, 1000], prices, apis=3)
    assert result["mean_units_per_request"] == (3 + 3 + 4 + 10) / 4
    assert result["usd_per_million_tickets"] == pytest.approx(5 * 3 * 0.0001 * 1e6)


def test_call_shares_split_overlaps_and_aws_waits_scale_each_call_by_its_kind():
    spans = [(0.0, 1.0), (0.5, 1.5), (2.0, 3.0)]
    assert cost.call_shares(spans) == pytest.approx([0.75, 0.75, 1.0])
    assert sum(cost.call_shares(spans)) == pytest.approx(cost.busy_seconds(spans))
    table = {"dynamodb.PutItem": 6, "s3.*": 40, "*": 20}
    # Two overlapping 100 ms calls (75 ms of wall time each): 6/100 and 40/100 of their shares.
    assert cost.aws_wait_ms([(0.0, 0.1), (0.05, 0.15)], ["dynamodb.PutItem", "s3.PutObject"], table) == pytest.approx(34.5)
    assert cost.latency_ms("sqs.SendMessageBatch", table) == 20 and cost.latency_ms("s3.GetObject", table) == 40
    with pytest.raises(KeyError):
        cost.latency_ms("sqs.SendMessage", {"dynamodb.*": 5})


def test_latencies_are_overridden_by_a_file_or_the_command_line(tmp_path: Path):
    own = tmp_path / "prices.json"
    own.write_text(json.dumps({"aws_latency_ms": {"dynamodb.PutItem": 50}}))
    table = cost.load_prices(own)
    assert table["aws_latency_ms"]["dynamodb.PutItem"] == 50 and table["aws_latency_ms"]["s3.PutObject"] == 40


def test_busy_seconds_counts_concurrent_calls_once():
    assert cost.busy_seconds([(0.0, 1.0), (0.5, 1.5), (3.0, 4.0)]) == pytest.approx(2.5)
    assert cost.busy_seconds([]) == 0.0


def test_gsis_are_read_from_the_template(tmp_path: Path):
    assert cost.template_gsis(cost.TEMPLATE) == {}  # none today: nothing to add
    template = tmp_path / "t.yaml"
    template.write_text("""Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "app-${Stage}-tickets"
      GlobalSecondaryIndexes:
        - {IndexName: by_day, Projection: {ProjectionType: ALL}}
        - {IndexName: by_company, Projection: {ProjectionType: KEYS_ONLY}}
""")
    gsis = cost.template_gsis(template)
    assert gsis == {"tickets": ["ALL", "KEYS_ONLY"]}
    item = serialize({"ticket_id": "t", "text": "v" * 1500})
    bill = _bill()
    cost.price_calls([_call("PutItem", {"TableName": "app-dev-tickets", "Item": item})], bill, gsis, tickets_table="app-dev-tickets")
    assert bill.units["dynamodb_wru"] == 2 + 2 + 1


def test_the_breakdown_names_row_kinds_never_ids():
    row = rl.describe_request("dynamodb", "BatchWriteItem", {"RequestItems": {"dev-aggregates": [
        {"PutRequest": {"Item": serialize({"pk": "customer#secret-77", "sk": "2024-01-01#abc", "tickets": 1})}},
        {"PutRequest": {"Item": serialize({"pk": "Weird Key#1", "sk": "x"})}}]}})
    assert [w["row"] for w in row["writes"]] == ["customer", None]
    assert "secret-77" not in json.dumps(row)
    bill = _bill()
    facts = cost.price_calls([{**row, "svc": "dynamodb", "op": "BatchWriteItem", "src": "f", "status": 200}], bill)
    assert dict(facts["wru_by_write"]) == {"aggregates customer# put": 1, "aggregates put": 1}


def test_inserts_cost_a_put_each_duplicates_still_cost_and_throttled_statements_do_not():
    from supportlens.adapters.dynamo import insert_statement

    items = [serialize({"ticket_id": f"t{i}", "chunk_id": "c1", "text": "y" * 1500}) for i in range(4)]  # 2 WRU each
    params = {"Statements": [insert_statement("x-tickets", item) for item in items]}
    params["Statements"].insert(1, {"Statement": 'UPDATE "x-tickets" SET a = ? WHERE ticket_id = ?'})  # not priced
    answer_codes = [None, None, "ThrottlingError", "ThrottlingError", "DuplicateItem"]  # by statement position
    described = rl.describe_request("dynamodb", "BatchExecuteStatement", params)
    assert [w["size"] for w in described["writes"]] == [rl.item_size(i) for i in items] and "y" * 20 not in json.dumps(described)
    answer = {"Responses": [{"Error": {"Code": c}} if c else {} for c in answer_codes]}
    bill = _bill()
    facts = cost.price_calls([_call("BatchExecuteStatement", params, answer)], bill, tickets_table="x-tickets")
    assert bill.units["dynamodb_wru"] == 4  # written, (the UPDATE), -, -, refused (a failed condition costs)
    assert facts["ticket_puts"] == 1 and facts["ticket_put_wru"] == 2
