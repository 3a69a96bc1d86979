"""The local cloud's faster moto transactions keep DynamoDB's all-or-nothing semantics."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud.moto_patches import apply


@pytest.fixture
def table():
    apply()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="agg", BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
        client.put_item(TableName="agg", Item={"pk": {"S": "day"}, "sk": {"S": "a"}, "n": {"N": "1"}})
        yield client


def counter_transaction(marker: str) -> list[dict]:
    return [
        {"Put": {"TableName": "agg", "Item": {"pk": {"S": "marker"}, "sk": {"S": marker}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": "agg", "Key": {"pk": {"S": "day"}, "sk": {"S": "a"}},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Update": {"TableName": "agg", "Key": {"pk": {"S": "day"}, "sk": {"S": "new"}},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ]


def value(client, sk: str):
    item = client.get_item(TableName="agg", Key={"pk": {"S": "day"}, "sk": {"S": sk}}).get("Item")
    return None if item is None else int(item["n"]["N"])


def test_committed_transaction_applies_every_item(table):
    table.transact_write_items(TransactItems=counter_transaction("chunk-1"))
    assert (value(table, "a"), value(table, "new")) == (2, 1)


def test_cancelled_transaction_restores_touched_items(table):
    table.transact_write_items(TransactItems=counter_transaction("chunk-1"))
    with pytest.raises(ClientError) as err:
        table.transact_write_items(TransactItems=counter_transaction("chunk-1"))  # redelivery
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert (value(table, "a"), value(table, "new")) == (2, 1)


def test_cancelled_first_transaction_removes_items_it_created(table):
    table.put_item(TableName="agg", Item={"pk": {"S": "marker"}, "sk": {"S": "chunk-9"}})
    with pytest.raises(ClientError):
        table.transact_write_items(TransactItems=counter_transaction("chunk-9"))
    assert (value(table, "a"), value(table, "new")) == (1, None)
    assert table.scan(TableName="agg")["Count"] == 2


def test_query_reads_only_its_partition_in_key_order(table):
    for pk, sk in [("c#1", "2024-01-03"), ("c#2", "2024-01-01"), ("c#1", "2024-01-01"), ("c#1", "2024-01-02")]:
        table.put_item(TableName="agg", Item={"pk": {"S": pk}, "sk": {"S": sk}})
    got = table.query(TableName="agg", KeyConditionExpression="pk = :p AND sk >= :s",
                      ExpressionAttributeValues={":p": {"S": "c#1"}, ":s": {"S": "2024-01-02"}})
    assert [i["sk"]["S"] for i in got["Items"]] == ["2024-01-02", "2024-01-03"]
    first = table.query(TableName="agg", KeyConditionExpression="pk = :p", Limit=2,
                        ExpressionAttributeValues={":p": {"S": "c#1"}})
    rest = table.query(TableName="agg", KeyConditionExpression="pk = :p", ExclusiveStartKey=first["LastEvaluatedKey"],
                       ExpressionAttributeValues={":p": {"S": "c#1"}})
    assert [i["sk"]["S"] for i in first["Items"] + rest["Items"]] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert table.query(TableName="agg", KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": {"S": "nobody"}})["Items"] == []


@pytest.fixture
def moto_server():
    """Streams are served by moto's server (as in the local cloud), not by mock_aws."""
    from localcloud.cloud import free_port, start_emulator

    port = free_port()
    server = start_emulator(port)
    yield {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1",
           "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    server.stop()


def test_stream_records_read_the_same_as_through_motos_serializer(moto_server, monkeypatch):
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    ddb = boto3.client("dynamodb", **moto_server)
    arn = ddb.create_table(
        TableName="tickets", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    item = {"ticket_id": {"S": "t1"}, "n": {"N": "1.5"}, "blob": {"B": b"\x00\xffraw"}, "ok": {"BOOL": True},
            "none": {"NULL": True}, "tags": {"SS": ["a", "b"]}, "nums": {"NS": ["1", "2"]}, "bins": {"BS": [b"x"]},
            "nested": {"M": {"l": {"L": [{"S": "é"}, {"N": "3"}, {"B": b"y"}, {"M": {"deep": {"BOOL": False}}}]}}}}
    ddb.put_item(TableName="tickets", Item=item)
    ddb.update_item(TableName="tickets", Key={"ticket_id": {"S": "t1"}}, UpdateExpression="SET n = :v",
                    ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.delete_item(TableName="tickets", Key={"ticket_id": {"S": "t1"}})
    streams = boto3.client("dynamodbstreams", **moto_server)
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]

    def read() -> list[dict]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        response = streams.get_records(ShardIterator=iterator)
        assert response["NextShardIterator"]
        return response["Records"]

    fallbacks = DynamoDBStreamsHandler.get_records.fallbacks
    fast = read()
    assert DynamoDBStreamsHandler.get_records.fallbacks == fallbacks  # every record took the json.dumps path
    monkeypatch.setattr(DynamoDBStreamsHandler, "get_records", DynamoDBStreamsHandler.get_records.__wrapped__)
    assert fast == read()
    assert [r["eventName"] for r in fast] == ["INSERT", "MODIFY", "REMOVE"]
    assert fast[0]["dynamodb"]["NewImage"]["blob"] == {"B": b"\x00\xffraw"}
    assert fast[0]["dynamodb"]["ApproximateCreationDateTime"].year >= 2024


@pytest.mark.parametrize("padding", [404_000, 404_600, 404_960, 404_990, 405_000, 406_000])
def test_items_are_built_with_the_same_size_limit_as_moto(padding):
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    apply()
    attrs = {"pk": {"S": "k"}, "n": {"N": "12"}, "tags": {"SS": ["a", "b"]}, "nested": {"M": {"x": {"L": [{"S": "y"}]}}},
             "pad": {"S": "x" * padding}, "after": {"S": "z"}}

    def build(init) -> tuple[str, dict | None]:
        item = Item.__new__(Item)
        try:
            init(item, DynamoType({"S": "k"}), None, attrs)
        except ItemSizeTooLarge:
            return "too large", None
        return "ok", item.to_json()

    assert build(Item.__init__) == build(Item.__init__.__wrapped__)
    assert build(Item.__init__)[0] == ("ok" if padding < 404_990 else "too large")


def _expression_script(client) -> list:
    """Conditional puts, transactions and ADD/SET updates whose outcome depends on every part of the
    expression: the same text with other values, other names, bad syntax, missing placeholders."""
    client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
    owned = "attribute_not_exists(pk) OR #owner = :owner"

    def put(sk: str, owner: str, names: dict | None = None, expression: str = owned) -> dict:
        return {"Put": {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": sk}, "chunk": {"S": owner}},
                        "ConditionExpression": expression, "ExpressionAttributeNames": names or {"#owner": "chunk"},
                        "ExpressionAttributeValues": {":owner": {"S": owner}}}}

    def add(sk: str, expression: str, values: dict, names: dict | None = None) -> dict:
        update = {"TableName": "t", "Key": {"pk": {"S": "agg"}, "sk": {"S": sk}}, "UpdateExpression": expression,
                  "ExpressionAttributeValues": values}
        if names:
            update["ExpressionAttributeNames"] = names
        return {"Update": update}

    calls = [
        ("transact_write_items", {"TransactItems": [put("a", "c1"), put("b", "c1")]}),
        ("transact_write_items", {"TransactItems": [put("a", "c1"), put("c", "c1")]}),  # ours again: allowed
        ("transact_write_items", {"TransactItems": [put("a", "c2"), put("d", "c2")]}),  # same text, other value: cancelled
        ("transact_write_items", {"TransactItems": [put("a", "c2", {"#owner": "pk"})]}),  # other name
        ("transact_write_items", {"TransactItems": [put("e", "c1", expression="attribute_not_exists(pk) OR")]}),  # bad syntax
        ("transact_write_items", {"TransactItems": [put("e", "c1", expression="attribute_not_exists(pk) OR")]}),  # still bad
        ("transact_write_items", {"TransactItems": [put("e", "c1", names={"#other": "chunk"})]}),  # placeholder not defined
        ("put_item", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "b"}, "chunk": {"S": "c3"}},
                      "ConditionExpression": owned, "ExpressionAttributeNames": {"#owner": "chunk"},
                      "ExpressionAttributeValues": {":owner": {"S": "c3"}}}),
        ("put_item", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "l"}, "tags": {"L": [{"S": "x"}]}},
                      "ConditionExpression": "attribute_not_exists(pk) OR tags = :t",
                      "ExpressionAttributeValues": {":t": {"L": [{"S": "x"}]}}}),
        ("put_item", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "l"}, "tags": {"L": [{"S": "y"}]}},
                      "ConditionExpression": "attribute_not_exists(pk) OR tags = :t",
                      "ExpressionAttributeValues": {":t": {"L": [{"S": "x"}]}}}),
        ("put_item", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "bin"}, "b": {"B": b"\x00a"}},
                      "ConditionExpression": "attribute_not_exists(pk) OR b = :b", "ExpressionAttributeValues": {":b": {"B": b"\x00a"}}}),
        ("put_item", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "bin"}, "b": {"B": b"\x00b"}},
                      "ConditionExpression": "attribute_not_exists(pk) OR b = :b", "ExpressionAttributeValues": {":b": {"B": b"\x00b"}}}),
        ("transact_write_items", {"TransactItems": [add("x", "ADD #c0 :v0, #c1 :v1", {":v0": {"N": "1"}, ":v1": {"N": "2.5"}},
                                                        {"#c0": "n", "#c1": "m"})]}),
        ("transact_write_items", {"TransactItems": [add("x", "ADD #c0 :v0, #c1 :v1", {":v0": {"N": "-3"}, ":v1": {"N": "0.5"}},
                                                        {"#c0": "n", "#c1": "m"})]}),
        ("transact_write_items", {"TransactItems": [add("x", "ADD #c0 :v0, #c1 :v1", {":v0": {"N": "1"}, ":v1": {"N": "1"}},
                                                        {"#c0": "m", "#c1": "k"})]}),  # same text, other attributes
        ("update_item", {"TableName": "t", "Key": {"pk": {"S": "agg"}, "sk": {"S": "x"}}, "UpdateExpression": "SET s = :s",
                         "ExpressionAttributeValues": {":s": {"S": "text"}}}),
        ("update_item", {"TableName": "t", "Key": {"pk": {"S": "agg"}, "sk": {"S": "x"}}, "UpdateExpression": "ADD s :v",
                         "ExpressionAttributeValues": {":v": {"N": "1"}}}),  # ADD to a string: type error
        ("update_item", {"TableName": "t", "Key": {"pk": {"S": "agg"}, "sk": {"S": "x"}}, "UpdateExpression": "ADD s :v",
                         "ExpressionAttributeValues": {":v": {"N": "1"}}}),  # and again
        ("update_item", {"TableName": "t", "Key": {"pk": {"S": "agg"}, "sk": {"S": "x"}}, "UpdateExpression": "ADD n :v SET",
                         "ExpressionAttributeValues": {":v": {"N": "1"}}}),  # bad syntax
        ("update_item", {"TableName": "t", "Key": {"pk": {"S": "agg"}, "sk": {"S": "x"}}, "UpdateExpression": "SET n = n + :v",
                         "ConditionExpression": "n < :lim", "ExpressionAttributeValues": {":v": {"N": "1"}, ":lim": {"N": "0"}},
                         "ReturnValues": "ALL_NEW"}),
        ("update_item", {"TableName": "t", "Key": {"pk": {"S": "agg"}, "sk": {"S": "x"}}, "UpdateExpression": "SET n = n + :v",
                         "ConditionExpression": "n < :lim", "ExpressionAttributeValues": {":v": {"N": "1"}, ":lim": {"N": "10"}},
                         "ReturnValues": "ALL_NEW"}),
        ("query", {"TableName": "t", "KeyConditionExpression": "pk = :p", "FilterExpression": "chunk = :c",
                   "ExpressionAttributeValues": {":p": {"S": "p"}, ":c": {"S": "c1"}}}),
        ("query", {"TableName": "t", "KeyConditionExpression": "pk = :p", "FilterExpression": "chunk = :c",
                   "ExpressionAttributeValues": {":p": {"S": "p"}, ":c": {"S": "c3"}}}),
        ("scan", {"TableName": "t"}),
    ]
    out = []
    for method, kwargs in calls:
        try:
            response = getattr(client, method)(**kwargs)
            response.pop("ResponseMetadata", None)
            out.append(("ok", response))
        except ClientError as exc:
            out.append((exc.response["Error"]["Code"], exc.response["Error"].get("Message"),
                        exc.response.get("CancellationReasons")))
        except Exception as exc:  # mock_aws lets some of moto's parse errors out as they are
            out.append((type(exc).__name__, str(exc)))
    return out


def test_cached_expression_parsing_answers_as_moto_does(monkeypatch):
    import moto.dynamodb.comparisons as comparisons
    import moto.dynamodb.models as models
    import moto.dynamodb.responses as responses
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    apply()
    patched = comparisons.create_condition_expression_parser
    make = UpdateExpressionParser.make.__func__
    patched.cache.clear()
    make.cache.clear()
    with mock_aws():
        fast = _expression_script(boto3.client("dynamodb", region_name="us-east-1"))
    assert len(patched.cache) >= 2 and len(make.cache) >= 3  # the cached path really ran
    for module in (comparisons, models, responses):
        monkeypatch.setattr(module, "create_condition_expression_parser", patched.__wrapped__)
    monkeypatch.setattr(UpdateExpressionParser, "make", classmethod(make.__wrapped__))
    with mock_aws():
        slow = _expression_script(boto3.client("dynamodb", region_name="us-east-1"))
    assert fast == slow
    kinds = [entry[0] for entry in slow]
    assert kinds.count("TransactionCanceledException") >= 2 and "ValidationException" in kinds
    assert "ConditionalCheckFailedException" in kinds


def _answers(call, requests: list[dict]) -> list:
    """Each request's answer (without its request id) or error code and message."""
    out = []
    for request in requests:
        try:
            response = call(**request)
            response.pop("ResponseMetadata", None)
            response.get("ConsumedCapacity", {}).pop("TableName", None)
            out.append(("ok", response))
        except ClientError as exc:
            out.append((exc.response["Error"]["Code"], exc.response["Error"].get("Message")))
    return out


def _add_script(ddb, streams, table: str) -> list:
    """ADD updates the fast path takes (new rows, existing rows, odd literals) and ones it must leave
    to moto (strings, keys, sets, conditions, duplicate or unused names), read back item by item,
    attribute order included, and as stream records."""
    arn = ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
                           StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]["LatestStreamArn"]
    key = {"pk": {"S": "day"}, "sk": {"S": "a"}}
    ddb.create_table(TableName=f"{table}-seq", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "seq", "AttributeType": "N"}])
    ddb.put_item(TableName=f"{table}-seq", Item={"id": {"S": "x"}, "seq": {"N": "1"}})

    def upd(expression, values, names=None, **extra):
        request = {"TableName": extra.pop("TableName", table), "Key": extra.pop("Key", key), "UpdateExpression": expression,
                   "ExpressionAttributeValues": values, **extra}
        if names is not None:
            request["ExpressionAttributeNames"] = names
        return request

    n = lambda v: {"N": v}  # noqa: E731
    updates = [
        upd("ADD #c0 :v0, #c1 :v1", {":v0": n("1"), ":v1": n("2.50")}, {"#c0": "tickets", "#c1": "score"}),
        upd("ADD #c0 :v0, #c1 :v1", {":v0": n("007"), ":v1": n("-0.5")}, {"#c0": "tickets", "#c1": "score"}),
        upd("ADD #c1 :v1,#c0 :v0", {":v0": n("-8"), ":v1": n("0.000")}, {"#c0": "neg", "#c1": "tickets"}),
        upd("ADD #c0 :v0", {":v0": n("12345678901234567890.123456789")}, {"#c0": "big"}),
        upd("SET #s = :s", {":s": {"S": "text"}}, {"#s": "label"}),
        upd("ADD #c0 :v0", {":v0": n("1")}, {"#c0": "label"}),  # a string: moto's type error
        upd("ADD #c0 :v0", {":v0": n("1")}, {"#c0": "sk"}),  # a key attribute: moto's error
        upd("ADD #c0 :v0, #c1 :v1", {":v0": n("1"), ":v1": n("1")}, {"#c0": "x", "#c1": "x"}),  # overlapping
        upd("ADD #c0 :v0, #c1 :v1", {":v0": n("1"), ":v1": n("1")}, {"#c0": "x"}),  # undefined: the handler rejects it
        upd("ADD #c0 :v0", {":v0": n("1")}, {"#c0": "seq"}, TableName=f"{table}-seq",
            Key={"id": {"S": "x"}, "seq": {"N": "1"}}),  # a numeric key attribute
        upd("ADD #c0 :v0", {":v0": n("1")}, {"#c0": "x", "#unused": "y"}),  # unused name
        upd("ADD #c0 :v0, #c1 :v1", {":v0": {"SS": ["b", "a"]}, ":v1": n("1")}, {"#c0": "tags", "#c1": "tickets"}),
        upd("ADD #c0 :v0", {":v0": {"SS": ["a", "c"]}}, {"#c0": "tags"}),  # "a" is there already
        upd("ADD #c0 :v0", {":v0": {"NS": ["1.0", "2"]}}, {"#c0": "nums"}),
        upd("ADD #c0 :v0", {":v0": {"NS": ["1"]}}, {"#c0": "tags"}),  # a number set to a string set: moto's error
        upd("ADD #c0 :v0", {":v0": {"SS": []}}, {"#c0": "tags"}),  # empty: moto's error
        upd("ADD #c0 :v0", {":v0": {"L": [{"S": "x"}]}}, {"#c0": "lst"}),  # a list: moto's error
        upd("ADD #c0 :v0", {":v0": n("1"), ":lim": n("0")}, {"#c0": "tickets"}, ConditionExpression="tickets < :lim"),
        upd("ADD #c0 :v0", {":v0": n("1")}, {"#c0": "tickets"}, Key={"pk": {"S": "day"}, "sk": {"S": "new"}}),
        upd("ADD #c0 :v0", {":v0": n("5")}, {"#c0": "tickets"}, Key={"pk": {"S": "day"}, "sk": {"S": "new"}},
            ReturnValues="ALL_NEW"),
    ]
    out = _answers(ddb.update_item, updates)
    ddb.transact_write_items(TransactItems=[{"Update": upd("ADD #c0 :v0, #c1 :v1", {":v0": n("2"), ":v1": n("0.25")},
                                                           {"#c0": "tickets", "#c1": "score"})}])
    out.append(ddb.scan(TableName=f"{table}-seq")["Items"])
    for sk in ("a", "new"):
        item = ddb.get_item(TableName=table, Key={"pk": {"S": "day"}, "sk": {"S": sk}})["Item"]
        out.append((sk, list(item), item))  # attribute order as moto writes it
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    for record in streams.get_records(ShardIterator=iterator)["Records"]:
        image = record["dynamodb"]
        out.append((record["eventName"], image.get("OldImage"), image.get("NewImage"), list(image.get("NewImage", {}))))
    return out


def test_pure_add_updates_answer_as_moto_does(moto_server, monkeypatch):
    from moto.dynamodb.models import DynamoDBBackend

    fast_path = DynamoDBBackend.update_item
    applied = fast_path.applied
    clients = boto3.client("dynamodb", **moto_server), boto3.client("dynamodbstreams", **moto_server)
    fast = _add_script(*clients, "agg-fast")
    assert fast_path.applied - applied == 10  # the plain ADDs, and only those, took the fast path
    monkeypatch.setattr(DynamoDBBackend, "update_item", fast_path.__wrapped__)
    slow = _add_script(*clients, "agg-moto")
    assert fast == slow
    assert [entry[0] for entry in slow[:20]].count("ValidationException") >= 8


def test_pure_add_leaves_undefined_placeholders_to_moto():
    """moto's request handler rejects them before the backend; a direct backend call must too."""
    from types import SimpleNamespace

    from localcloud.moto_patches import _pure_add

    table = SimpleNamespace(attr=[{"AttributeName": "pk"}], hash_key_attr="pk", range_key_attr=None)
    assert _pure_add(table, "ADD #a :v", {"#a": "n"}, {":v": {"N": "1"}}) == [("n", {"N": "1"})]
    assert _pure_add(table, "ADD #a :v", {}, {":v": {"N": "1"}}) is None
    assert _pure_add(table, "ADD #a :v", {"#a": "n"}, {}) is None


def test_the_module_list_is_read_once_and_is_motos():
    import moto.backends as backends

    apply()
    first = backends.list_of_moto_modules()
    assert first == list(backends.list_of_moto_modules.__wrapped__()) and "dynamodb" in first and "sqs" in first
    assert backends.list_of_moto_modules() is first  # no directory listing per request


def _put_script(ddb, streams, table: str) -> list:
    """PutItems the fast path serves (new, redelivered, nested values) and ones it must leave to moto
    (conditions that fail, binaries, ReturnValues, bad keys, bad expressions), read back item by item,
    attribute order included, and as stream records."""
    arn = ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}],
                           StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]["LatestStreamArn"]
    owned = "attribute_not_exists(ticket_id) OR #owner = :owner"

    def put(ticket, owner, extra=None, condition=owned, **request):
        item = {"ticket_id": {"S": ticket}, "chunk_id": {"S": owner}, **(extra or {})}
        if condition:
            request = {"ConditionExpression": condition, "ExpressionAttributeNames": {"#owner": "chunk_id"},
                       "ExpressionAttributeValues": {":owner": {"S": owner}}, **request}
        return {"TableName": request.pop("TableName", table), "Item": request.pop("Item", item), **request}

    rich = {"n": {"N": "1.50"}, "ok": {"BOOL": False}, "none": {"NULL": True}, "tags": {"SS": ["b", "a"]}, "nums": {"NS": ["2", "1.0"]},
            "text": {"S": "é\u2028\"q\""}, "nested": {"M": {"l": {"L": [{"S": "x"}, {"N": "3"}, {"M": {"deep": {"BOOL": True}}}, {"L": []}]}}}}
    puts = [
        put("t1", "c1", rich),
        put("t1", "c1", {"n": {"N": "2"}}),  # a redelivery: ours already
        put("t1", "c2"),  # another owner: ConditionalCheckFailed
        put("t2", "c2", condition=None),  # unconditional
        put("t2", "c3", condition="attribute_not_exists(ticket_id)"),  # #owner unused: moto's validation error
        put("t2", "c3", condition="attribute_not_exists(ticket_id) AND #owner <> :owner"),  # exists: ConditionalCheckFailed
        put("t3", "c1", {"blob": {"B": b"\x00\xff"}, "bins": {"BS": [b"x"]}}),  # binaries: moto's parser decodes them
        put("t4", "c1", {"nested": {"M": {"b": {"B": b"y"}}}}),
        put("t1", "c1", {"n": {"N": "3"}}, ReturnValues="ALL_OLD"),
        put("t5", "c1", ReturnConsumedCapacity="TOTAL"),
        put("", "c1"),  # an empty key: moto's validation error
        put("t6", "c1", Item={"chunk_id": {"S": "c1"}}),  # no key attribute
        put("t6", "c1", {"e": {"SS": []}}),  # an empty set
        put("t6", "c1", condition="attribute_not_exists(ticket_id) OR"),  # a syntax error
        put("t6", "c1", ExpressionAttributeNames={"#owner": "chunk_id", "#unused": "x"}),
        put("t6", "c1", TableName="nowhere"),
        put("t7", "c1", {"big": {"S": "x" * 405_000}}),  # over the item size limit
        put("t8", "c1", {"n": {"N": "12345678901234567890.123456789"}}),
        put("t9", "c1", {"blob": {"B": b"\x01" * 304_000}}),  # fits; its base64 text (405,336 bytes) would not
    ]
    out = _answers(ddb.put_item, puts)
    for item in sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["ticket_id"]["S"]):
        out.append((list(item), item))
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    for record in streams.get_records(ShardIterator=iterator)["Records"]:
        image = record["dynamodb"]
        out.append((record["eventName"], image["Keys"], image.get("OldImage"), image.get("NewImage"), list(image.get("NewImage", {}))))
    return out


def test_plain_puts_answer_as_moto_does(moto_server, monkeypatch):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from localcloud.moto_patches import _fast_put

    clients = boto3.client("dynamodb", **moto_server), boto3.client("dynamodbstreams", **moto_server)
    applied = _fast_put.applied
    fast = _put_script(*clients, "tickets-fast")
    assert _fast_put.applied - applied == 4  # the plain puts that succeed, and only those, took the fast path
    monkeypatch.setattr(DomainDispatcherApplication.__call__, "enabled", False)
    slow = _put_script(*clients, "tickets-moto")
    assert _fast_put.applied - applied == 4
    assert fast == slow
    kinds = [entry[0] for entry in slow[:19]]
    assert kinds.count("ConditionalCheckFailedException") == 2 and kinds.count("ValidationException") >= 5
    assert "ResourceNotFoundException" in kinds and kinds.count("ok") == 9


def test_fast_puts_keep_motos_headers(moto_server, monkeypatch):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    ddb = boto3.client("dynamodb", **moto_server)
    ddb.create_table(TableName="h", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    seen = []
    ddb.meta.events.register("after-call.dynamodb.PutItem",
                             lambda http_response, **_: seen.append((http_response.status_code, http_response.content,
                                                                     [h for h in http_response.headers if h.lower() not in ("date", "x-amzn-requestid")],
                                                                     {k: v for k, v in http_response.headers.items() if k.lower() not in ("date", "x-amzn-requestid")})))
    ddb.put_item(TableName="h", Item={"k": {"S": "fast"}})
    monkeypatch.setattr(DomainDispatcherApplication.__call__, "enabled", False)
    ddb.put_item(TableName="h", Item={"k": {"S": "moto"}})
    assert seen[0] == seen[1] and seen[0][0] == 200


def test_random_strings_have_motos_length_alphabet_and_seeding():
    import string

    from moto.moto_api._internal import mock_random
    from moto.moto_api._internal.moto_random import MotoRandom

    apply()
    patched, original = MotoRandom.get_random_string, MotoRandom.get_random_string.__wrapped__
    for kwargs in ({}, {"length": 52}, {"length": 7, "include_digits": False}, {"length": 30, "lower_case": True}, {"length": 0}):
        for _ in range(50):
            ours, motos = patched(mock_random, **kwargs), original(mock_random, **kwargs)
            assert len(ours) == len(motos) == kwargs.get("length", 20)
            pool = string.ascii_letters + (string.digits if kwargs.get("include_digits", True) else "")
            pool = pool.lower() if kwargs.get("lower_case") else pool
            assert set(ours) <= set(pool) and set(motos) <= set(pool)
    mock_random.seed(7)
    first = [mock_random.get_random_string(length=52) for _ in range(3)]
    mock_random.seed(7)
    assert [mock_random.get_random_string(length=52) for _ in range(3)] == first  # seeding still makes ids repeatable
    mock_random.seed()
    drawn = "".join(mock_random.get_random_string(length=52) for _ in range(400))
    assert set(drawn) == set(string.ascii_letters + string.digits)  # every character can come out


@pytest.mark.parametrize("body", [
    '{"Items": [], "Count": 0}', "", '{"text": "<RequestId>inside JSON</RequestId>"}',
    "<Response><RequestId>old</RequestId><x/></Response>", b"<RequestId>bytes</RequestId>", b"{}", None,
])
@pytest.mark.parametrize("headers", [{}, {"status": 400}, {"status": "200", "x": "y"}])
def test_request_ids_are_set_as_moto_sets_them(monkeypatch, body, headers):
    import moto.core.responses as responses
    from moto.core.responses import BaseResponse

    apply()
    ids = iter(range(100))
    monkeypatch.setattr(responses, "gen_amzn_requestid_long",
                        lambda h=None: (h.update({"x-amzn-requestid": f"REQ{next(ids)}"}) if h is not None else None) or "REQ")
    ours = BaseResponse._enrich_response(dict(headers), body)
    ids = iter(range(100))
    motos = BaseResponse._enrich_response.__wrapped__(dict(headers), body)
    assert ours == motos and type(ours[1]) is type(motos[1])


def test_handler_methods_are_listed_once_per_class_and_are_motos():
    import moto.core.responses as responses
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    apply()
    listed = responses.method_names_from_class
    for handler in (DynamoHandler, SQSResponse):
        assert listed(handler) == listed.__wrapped__(handler) and "put_item" in listed(DynamoHandler)
        assert listed(handler) is listed(handler)  # kept, not listed again


def _insert_script(ddb, streams, table: str) -> list:
    """BatchExecuteStatements of INSERTs: new items (nested values, a quote in a name), an existing key, a
    missing table, items moto's PutItem checks reject, binaries (which the HTTP fast path leaves to the
    handler), and a statement of another shape (left to moto); answers, items and stream records."""
    arn = ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}],
                           StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"]["LatestStreamArn"]
    from supportlens.adapters.dynamo import insert_statement

    def insert(item, into=table):
        return insert_statement(into, item)

    rich = {"ticket_id": {"S": "t1"}, "chunk_id": {"S": "c1"}, "n": {"N": "1.50"}, "ok": {"BOOL": False}, "none": {"NULL": True},
            "tags": {"SS": ["b", "a"]}, "it's": {"S": "é\u2028\"q\""}, "nested": {"M": {"l": {"L": [{"S": "x"}, {"M": {"d": {"BOOL": True}}}]}}}}
    batches = [
        [insert(rich), insert({"ticket_id": {"S": "t2"}, "chunk_id": {"S": "c1"}})],
        [insert({"ticket_id": {"S": "t1"}, "chunk_id": {"S": "c2"}}),  # taken: DuplicateItem, t1 unchanged
         insert({"ticket_id": {"S": "t3"}}, into="nowhere"),
         insert({"ticket_id": {"S": ""}, "chunk_id": {"S": "c2"}}),  # an empty key
         insert({"chunk_id": {"S": "c2"}}),  # no key attribute
         insert({"ticket_id": {"S": "t4"}, "big": {"S": "x" * 405_000}}),  # over the item size limit
         insert({"ticket_id": {"S": "t5"}, "chunk_id": {"S": "c2"}})],  # the batch goes on after errors
        [insert({"ticket_id": {"S": "t6"}, "blob": {"B": b"\x00\xff"}})],  # binaries: the handler's path
    ]
    out = _answers(ddb.batch_execute_statement, [{"Statements": b} for b in batches])
    for _, answer in out:
        for response in answer["Responses"]:
            assert response.pop("TableName", table) in (table, "nowhere")  # each table's own name
    for item in sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["ticket_id"]["S"]):
        out.append((list(item), item))
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    for record in streams.get_records(ShardIterator=iterator)["Records"]:
        out.append((record["eventName"], record["dynamodb"]["Keys"], record["dynamodb"].get("NewImage")))
    return out


def test_inserts_answer_as_dynamodb_does_on_both_paths(moto_server, monkeypatch):
    """DynamoDB's INSERT writes only a new key and answers DuplicateItem otherwise (moto's PartiQL
    overwrites): the HTTP fast path and the handler's path give the same answers, items and records."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from localcloud.moto_patches import _fast_put

    clients = boto3.client("dynamodb", **moto_server), boto3.client("dynamodbstreams", **moto_server)
    applied = _fast_put.applied
    fast = _insert_script(*clients, "inserts-fast")
    assert _fast_put.applied - applied == 2  # the two batches without binaries
    monkeypatch.setattr(DomainDispatcherApplication.__call__, "enabled", False)
    slow = _insert_script(*clients, "inserts-handler")
    assert fast == slow
    answers = [[(r.get("Error") or {}).get("Code") for r in answer["Responses"]] for kind, answer in slow[:3]]
    assert answers == [[None, None], ["DuplicateItem", "ResourceNotFound", "ValidationError", "ValidationError", "ValidationError", None], [None]]
    stored = {item["ticket_id"]["S"]: item for _, item in slow[3:7]}
    assert sorted(stored) == ["t1", "t2", "t5", "t6"] and stored["t1"]["chunk_id"] == {"S": "c1"}  # the first writer's
    assert [r[0] for r in slow[7:]] == ["INSERT"] * 4  # one stream record per written item, none for the refused


def test_an_insert_stores_what_motos_put_item_of_the_item_stores(moto_server):
    """moto's own PartiQL takes no `?` parameters in an INSERT (a TypeError, HTTP 500): the reference is
    moto's PutItem of the same item, which a new key's INSERT is."""
    from supportlens.adapters.dynamo import insert_statement

    ddb = boto3.client("dynamodb", **moto_server)
    item = {"ticket_id": {"S": "k"}, "n": {"N": "1.50"}, "tags": {"SS": ["b", "a"]}, "m": {"M": {"l": {"L": [{"S": "x"}, {"NULL": True}]}}}}
    stored = []
    for table, write in (("by-insert", lambda t: ddb.batch_execute_statement(Statements=[insert_statement(t, item)])),
                         ("by-put", lambda t: ddb.put_item(TableName=t, Item=item))):
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}])
        write(table)
        stored.append(ddb.get_item(TableName=table, Key={"ticket_id": {"S": "k"}})["Item"])
    assert stored[0] == stored[1] == item and list(stored[0]) == list(stored[1])


def test_insert_shape_reads_only_plain_inserts():
    from localcloud.request_log import insert_shape

    assert insert_shape("""INSERT INTO "t-1" VALUE {'a': ?, 'it''s' : ?}""") == ("t-1", ["a", "it's"])
    assert insert_shape("""insert into "t" value {'a':?}""") == ("t", ["a"])
    for other in ("""INSERT INTO "t" VALUE {'a': 1}""", """INSERT INTO t VALUE {'a': ?}""", """UPDATE "t" SET a = ?""",
                  """INSERT INTO "t" VALUE {'a': ?} ; DELETE FROM "t" """, """INSERT INTO "t" VALUE {}""", None):
        assert insert_shape(other) is None


def test_concurrent_writes_of_one_item_are_atomic_as_on_dynamodb(moto_server, monkeypatch):
    """moto's server answers on several threads and reads an item, checks the condition and writes it
    without a lock: two INSERTs (or conditional puts) of one key could both win, two ADDs could lose one.
    A slowed item read opens that window wide; each write must still be one step."""
    import threading
    import time

    from moto.dynamodb.models.table import Table

    from supportlens.adapters.dynamo import insert_statement

    ddb = boto3.client("dynamodb", **moto_server)
    ddb.create_table(TableName="race", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "ticket_id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "ticket_id", "AttributeType": "S"}])
    read = Table.get_item

    def slow_read(self, *args, **kwargs):
        found = read(self, *args, **kwargs)
        time.sleep(0.2)
        return found

    monkeypatch.setattr(Table, "get_item", slow_read)

    def together(*writes):
        answers: list = [None] * len(writes)

        def run(n):
            try:
                answers[n] = writes[n]()
            except ClientError as exc:
                answers[n] = exc.response["Error"]["Code"]

        threads = [threading.Thread(target=run, args=(n,)) for n in range(len(writes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def insert(chunk):
        statement = insert_statement("race", {"ticket_id": {"S": "t"}, "chunk_id": {"S": chunk}})
        return lambda: (ddb.batch_execute_statement(Statements=[statement])["Responses"][0].get("Error") or {}).get("Code")

    assert sorted(together(insert("a"), insert("b")), key=str) == ["DuplicateItem", None]

    def put(chunk):
        return lambda: ddb.put_item(TableName="race", Item={"ticket_id": {"S": "p"}, "chunk_id": {"S": chunk}},
                                    ConditionExpression="attribute_not_exists(ticket_id)") and None

    assert sorted(together(put("a"), put("b")), key=str) == ["ConditionalCheckFailedException", None]

    def add():
        return ddb.update_item(TableName="race", Key={"ticket_id": {"S": "n"}}, UpdateExpression="ADD #n :one",
                               ExpressionAttributeNames={"#n": "n"}, ExpressionAttributeValues={":one": {"N": "1"}})

    together(add, add, add)
    assert ddb.get_item(TableName="race", Key={"ticket_id": {"S": "n"}})["Item"]["n"] == {"N": "3"}
