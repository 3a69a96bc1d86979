"""template.yaml: lints clean, translates offline, and holds the security defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.template import deploy_order, translate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def cfn():
    template, code = translate(TEMPLATE, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"})
    return template, code


def test_cfn_lint_is_clean():
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_code_path_exists(cfn):
    _, code = cfn
    for directory in code.values():
        assert directory.is_dir(), directory
    for function in ("ingest", "enrich", "cluster", "alerts", "report"):
        assert (ROOT / "functions" / function / "app.py").is_file()


def test_resources_and_event_sources(cfn):
    template, _ = cfn
    resources = template["Resources"]
    types = {r["Type"] for r in resources.values()}
    assert {"AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::SNS::Topic", "AWS::Lambda::Function",
            "AWS::Lambda::EventSourceMapping", "AWS::Scheduler::Schedule", "AWS::Lambda::LayerVersion"} <= types
    mappings = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert all(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings)
    schedules = {r["Properties"]["ScheduleExpression"] for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"}
    assert {"cron(0 2 * * ? *)", "cron(0 6 * * ? *)", "cron(0 7 ? * MON *)"} <= schedules
    assert deploy_order(resources)  # no cycles


def test_encryption_at_rest_and_public_access(cfn):
    template, _ = cfn
    for name, r in template["Resources"].items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::DynamoDB::Table":
            assert props["SSESpecification"]["SSEEnabled"], name
        if r["Type"] == "AWS::SQS::Queue":
            assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId"), name
        if r["Type"] == "AWS::SNS::Topic":
            assert props.get("KmsMasterKeyId"), name
        if r["Type"] == "AWS::S3::Bucket":
            assert props["BucketEncryption"]
            assert all(props["PublicAccessBlockConfiguration"].values())
    policy = next(r for r in template["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy")
    statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_policies_are_scoped_to_resources(cfn):
    """No function role may act on every resource ('*'), except X-Ray tracing which has no resource."""
    template, _ = cfn
    for name, r in template["Resources"].items():
        if r["Type"] != "AWS::IAM::Role" or not name.endswith("FunctionRole"):
            continue
        for policy in r["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement.get("Resource") != "*", (name, policy["PolicyName"], statement)


def test_nothing_that_fails_is_dropped_and_tables_can_be_restored(cfn):
    """Stream batches the Alerts function gives up on go to an on-failure destination; scheduled
    (asynchronous) invocations that fail go to a dead-letter queue (checkov CKV_AWS_116); every table
    has point-in-time recovery (CKV_AWS_28)."""
    template, _ = cfn
    resources = template["Resources"]
    for name, r in resources.items():
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and "Stream" in str(r["Properties"].get("EventSourceArn")):
            assert r["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"), name
        if r["Type"] == "AWS::DynamoDB::Table":
            assert r["Properties"].get("PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True}, name
    scheduled = {r["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0] for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"}
    assert {"ClusterFunction", "ReportFunction", "AlertsFunction"} <= scheduled
    for function in scheduled:
        assert resources[function]["Properties"].get("DeadLetterConfig", {}).get("TargetArn"), function


def test_quarantine_evidence_expires_and_uploads_are_versioned(cfn):
    """Quarantined rows (masked, but still evidence about people) expire; the bucket keeps the version
    Ingest was notified of, and replaced versions expire too."""
    template, _ = cfn
    (bucket,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-quarantine"]["Prefix"] == "quarantine/" and rules["expire-quarantine"]["ExpirationInDays"]
    assert rules["expire-replaced-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


def test_enrich_may_insert_read_and_rewrite_tickets_and_nothing_more(cfn):
    """Ticket writes are PartiQL INSERTs (BatchExecuteStatement needs dynamodb:PartiQLInsert, not PutItem),
    the duplicate check and the owner check are BatchGetItems, a redelivery's rewrite a BatchWriteItem."""
    template, _ = cfn
    role = template["Resources"]["EnrichFunctionRole"]["Properties"]
    actions = {action for policy in role.get("Policies", []) for statement in policy["PolicyDocument"]["Statement"]
               if statement.get("Resource") == {"Fn::GetAtt": ["TicketsTable", "Arn"]} for action in statement["Action"]}
    assert actions == {"dynamodb:PartiQLInsert", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}
