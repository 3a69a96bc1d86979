"""Create what the translated template describes on the emulator, through the service APIs.

moto's own CloudFormation silently drops bucket notifications, TTL, queue policies,
subscriptions and schedules, so every resource is created here directly. Lambda
functions, layers, event source mappings and schedules are recorded for the local
Lambda service and pollers instead of being sent to moto (which cannot run them).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3

from .lambda_service import FunctionConfig
from .template import CODE_BUCKET, Resolver, deploy_order, parameter_values, translate

log = logging.getLogger(__name__)
ACCOUNT = "123456789012"


@dataclass
class EventSourceMapping:
    logical_id: str
    function: str  # logical id of the function
    source_arn: str
    kind: str  # "sqs" | "dynamodb"
    batch_size: int
    batching_window_s: int
    report_item_failures: bool
    starting_position: str | None = None
    max_retry_attempts: int = -1
    bisect_on_error: bool = False
    on_failure_arn: str = ""  # DestinationConfig.OnFailure: where a stream batch goes once its retries are spent


@dataclass
class Schedule:
    logical_id: str
    function: str
    expression: str
    input: Any


@dataclass
class Deployment:
    region: str
    parameters: dict[str, Any]
    functions: list[FunctionConfig]
    event_sources: list[EventSourceMapping]
    schedules: list[Schedule]
    outputs: dict[str, Any]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> {type, ref, status}
    function_urls: dict[str, dict[str, Any]] = field(default_factory=dict)  # function logical id -> url, port, auth_type

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for fn in data["functions"]:
            fn["code_dir"] = str(fn["code_dir"])
            fn["layer_dirs"] = [str(p) for p in fn["layer_dirs"]]
        return data

    def function(self, name: str) -> FunctionConfig:
        for fn in self.functions:
            if name in (fn.name, fn.function_name) or fn.name == f"{name}Function":
                return fn
        raise KeyError(f"no function named {name}; known: {', '.join(f.name for f in self.functions)}")


class Deployer:
    def __init__(self, endpoint: str, region: str = "us-east-1"):
        self.region = region
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
        self.clients: dict[str, Any] = {}
        self._session = session
        self._endpoint = endpoint
        self.code_dirs: dict[str, Path] = {}
        self.layers: dict[str, list[Path]] = {}
        self.functions: dict[str, FunctionConfig] = {}
        self.function_arns: dict[str, str] = {}
        self.event_sources: list[EventSourceMapping] = []
        self.schedules: list[Schedule] = []
        self.function_urls: dict[str, dict[str, Any]] = {}  # function logical id -> url, port, auth_type

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self._session.client(service, endpoint_url=self._endpoint)
        return self.clients[service]

    def deploy(self, template_path: Path, overrides: dict[str, str] | None = None) -> Deployment:
        from .template import load_template

        raw = load_template(template_path)
        params = parameter_values(raw, overrides or {})
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": f"supportlens-{params.get('Stage', 'local')}",
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT}:stack/local/0",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.stack_name = pseudo["AWS::StackName"]  # generated names carry it, as CloudFormation's do
        cfn, self.code_dirs = translate(template_path, {**params, **pseudo})
        resolver = Resolver(cfn, params, pseudo)
        resources = cfn["Resources"]
        status: dict[str, dict[str, Any]] = {}
        for logical_id in deploy_order(resources):
            resource = resources[logical_id]
            kind = resource["Type"]
            if "Condition" in resource and not resolver.conditions.get(resource["Condition"], False):
                status[logical_id] = {"type": kind, "status": "skipped (condition false)"}
                continue
            props = resolver.resolve(resource.get("Properties", {}))
            creator: Callable[..., tuple[Any, dict[str, Any]]] | None = getattr(self, "_" + kind.replace("::", "_"), None)
            if creator is None:
                resolver.refs[logical_id] = logical_id
                resolver.attrs[logical_id] = {}
                status[logical_id] = {"type": kind, "status": "not emulated locally"}
                log.info("%s (%s) has no local equivalent; skipped", logical_id, kind)
                continue
            ref, attrs = creator(logical_id, props)
            resolver.refs[logical_id] = ref
            resolver.attrs[logical_id] = attrs
            status[logical_id] = {"type": kind, "ref": ref, "status": "created"}
        outputs = {}
        for name, output in cfn.get("Outputs", {}).items():
            if "Condition" in output and not resolver.conditions.get(output["Condition"], False):
                continue
            outputs[name] = resolver.resolve(output["Value"])
        for esm in self.event_sources:
            esm.function = self._function_logical_id(esm.function)
        for schedule in self.schedules:
            schedule.function = self._function_logical_id(schedule.function)
        return Deployment(self.region, params, list(self.functions.values()), self.event_sources, self.schedules, outputs, status,
                          self.function_urls)

    def _function_logical_id(self, name_or_arn: str) -> str:
        for logical_id, fn in self.functions.items():
            if name_or_arn in (logical_id, fn.function_name, fn.arn):
                return logical_id
        raise KeyError(f"no function {name_or_arn} in the template")

    def _local_dir(self, code: Any) -> Path:
        if isinstance(code, dict):
            bucket, key = code.get("S3Bucket"), code.get("S3Key")
        else:
            bucket, key = str(code).removeprefix("s3://").split("/", 1)
        if bucket != CODE_BUCKET or key not in self.code_dirs:
            raise ValueError(f"code location {code} is not a local path of the template")
        return self.code_dirs[key]

    # ------------------------------------------------------------------ S3
    def _AWS_S3_Bucket(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        s3 = self.client("s3")
        name = props.get("BucketName") or f"{self.stack_name}-{logical_id.lower()}"
        s3.create_bucket(Bucket=name)
        if "BucketEncryption" in props:
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                 **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        if "LifecycleConfiguration" in props:  # expiry rules (moto stores them; S3 on AWS applies them daily)
            rules = []
            for r in props["LifecycleConfiguration"]["Rules"]:
                rule: dict[str, Any] = {"ID": r["Id"], "Status": r["Status"], "Filter": {"Prefix": r.get("Prefix", "")}}
                if "ExpirationInDays" in r:
                    rule["Expiration"] = {"Days": int(r["ExpirationInDays"])}
                if "NoncurrentVersionExpiration" in r:
                    rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(r["NoncurrentVersionExpiration"]["NoncurrentDays"])}
                rules.append(rule)
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]})
        notification = props.get("NotificationConfiguration")
        if notification:
            config: dict[str, Any] = {}
            for cfn_key, api_key, arn_key, target in (
                ("QueueConfigurations", "QueueConfigurations", "QueueArn", "Queue"),
                ("TopicConfigurations", "TopicConfigurations", "TopicArn", "Topic"),
                ("LambdaConfigurations", "LambdaFunctionConfigurations", "LambdaFunctionArn", "Function"),
            ):
                for item in notification.get(cfn_key, []):
                    entry: dict[str, Any] = {arn_key: item[target], "Events": [item["Event"]]}
                    rules = item.get("Filter", {}).get("S3Key", {}).get("Rules")
                    if rules:
                        entry["Filter"] = {"Key": {"FilterRules": rules}}
                    config.setdefault(api_key, []).append(entry)
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=config)
        return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}

    def _AWS_S3_BucketPolicy(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        # moto evaluates bucket policies but ignores Condition blocks, so a conditional Deny
        # (e.g. TLS-only: aws:SecureTransport=false) would deny every request. Apply the rest.
        document = dict(props["PolicyDocument"])
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [s for s in statements if not (s.get("Effect") == "Deny" and s.get("Condition"))]
        dropped = [s.get("Sid", "?") for s in statements if s not in kept]
        if dropped:
            log.info("%s: conditional Deny statement(s) %s not applied locally (moto ignores conditions)", logical_id, dropped)
        if kept:
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps({**document, "Statement": kept}))
        return logical_id, {"NotAppliedLocally": dropped}

    # ------------------------------------------------------------------ SQS
    def _AWS_SecretsManager_Secret(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        import secrets

        length = int((props.get("GenerateSecretString") or {}).get("PasswordLength", 32))
        value = props.get("SecretString") or secrets.token_urlsafe(length)[:length]  # generated here, as CloudFormation does
        created = self.client("secretsmanager").create_secret(
            Name=props.get("Name") or f"{self.stack_name}-{logical_id}", SecretString=value,
            **({"Description": props["Description"]} if props.get("Description") else {}))
        return created["ARN"], {"Id": created["ARN"]}

    def _AWS_SQS_Queue(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("QueueName") or f"{self.stack_name}-{logical_id}"
        attributes = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds",
                    "MaximumMessageSize", "SqsManagedSseEnabled", "KmsMasterKeyId"):
            if key in props:
                attributes[key] = str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}"
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _AWS_SQS_QueuePolicy(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        return logical_id, {}

    # ------------------------------------------------------------------ DynamoDB
    def _AWS_DynamoDB_Table(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or f"{self.stack_name}-{logical_id}"
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in props:
                kwargs[key] = props[key]
        if "StreamSpecification" in props:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        if props.get("SSESpecification", {}).get("SSEEnabled"):
            kwargs["SSESpecification"] = {"Enabled": True}
        table = ddb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
        attrs = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attrs["StreamArn"] = table["LatestStreamArn"]
        return name, attrs

    # ------------------------------------------------------------------ SNS / SES / IAM
    def _AWS_SNS_Topic(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("TopicName") or f"{self.stack_name}-{logical_id}"
        attributes = {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        return arn, {"TopicArn": arn, "TopicName": name}

    def _AWS_SNS_Subscription(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        arn = self.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"])["SubscriptionArn"]
        return arn, {}

    def _AWS_SES_EmailIdentity(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        self.client("ses").verify_email_identity(EmailAddress=props["EmailIdentity"])
        return props["EmailIdentity"], {}

    def _AWS_IAM_Role(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        iam = self.client("iam")
        name = props.get("RoleName") or f"{self.stack_name}-{logical_id}"[:64]
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))["Role"]
        for policy in props.get("Policies", []):
            # SAM policy templates omit Version, which IAM accepts and moto rejects: state it.
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    # ------------------------------------------------------------------ Lambda (run locally)
    def _AWS_Lambda_LayerVersion(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        directory = self._local_dir(props["Content"])
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:layer:{props.get('LayerName', logical_id)}:1"
        # Like /opt/python: only a layer that ships code in python/ adds to the path; dependency
        # layers (requirements.txt built by `sam build`) are provided by the local virtualenv.
        self.layers[arn] = [directory / "python"] if (directory / "python").is_dir() else []
        return arn, {}

    def _AWS_Lambda_Function(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("FunctionName") or f"{self.stack_name}-{logical_id}"
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"
        layer_dirs = [d for layer in props.get("Layers", []) for d in self.layers.get(layer, [])]
        env = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        self.functions[logical_id] = FunctionConfig(
            name=logical_id,
            function_name=name,
            code_dir=self._local_dir(props["Code"]),
            handler=props["Handler"],
            layer_dirs=layer_dirs,
            environment=env,
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            arn=arn,
            dead_letter_arn=str(props.get("DeadLetterConfig", {}).get("TargetArn") or ""),
        )
        return name, {"Arn": arn}

    def _AWS_Lambda_EventSourceMapping(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        source = props["EventSourceArn"]
        kind = "sqs" if ":sqs:" in source else "dynamodb" if ":dynamodb:" in source else "other"
        if kind == "other":
            log.warning("event source %s is not emulated", source)
        self.event_sources.append(
            EventSourceMapping(
                logical_id=logical_id,
                function=props["FunctionName"],
                source_arn=source,
                kind=kind,
                batch_size=int(props.get("BatchSize", 10 if kind == "sqs" else 100)),
                batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                starting_position=props.get("StartingPosition"),
                max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
                on_failure_arn=str(props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") or ""),
            )
        )
        return logical_id, {}

    def _AWS_Lambda_Url(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        # A loopback port per URL, chosen now so outputs that reference the URL resolve to it;
        # LocalCloud serves it (function_urls.py).
        from .cloud import free_port  # cloud imports this module

        function = self._function_logical_id(str(props["TargetFunctionArn"]))
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        self.function_urls[function] = {"url": url, "port": port, "auth_type": props.get("AuthType", "AWS_IAM")}
        return url, {"FunctionUrl": url, "FunctionArn": self.functions[function].arn}

    def _AWS_Lambda_Permission(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return logical_id, {}  # the local Lambda service does not check invoke permissions

    def _AWS_Scheduler_Schedule(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        target = props["Target"]
        payload = json.loads(target["Input"]) if target.get("Input") else {}
        self.schedules.append(Schedule(logical_id, target["Arn"], props["ScheduleExpression"], payload))
        return logical_id, {"Arn": f"arn:aws:scheduler:{self.region}:{ACCOUNT}:schedule/default/{logical_id}"}

    def _AWS_Events_Rule(self, logical_id: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if "ScheduleExpression" in props:
            for target in props.get("Targets", []):
                payload = json.loads(target["Input"]) if target.get("Input") else {
                    "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
                self.schedules.append(Schedule(logical_id, target["Arn"], props["ScheduleExpression"], payload))
        return logical_id, {"Arn": f"arn:aws:events:{self.region}:{ACCOUNT}:rule/{logical_id}"}
