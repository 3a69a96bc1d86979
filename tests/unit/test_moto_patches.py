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
