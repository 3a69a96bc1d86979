"""Integration fixtures: one moto server, the resources of template.yaml deployed onto it,
and the real handler modules imported in-process with their template environment."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import boto3
import pytest

from localcloud.cloud import free_port, start_emulator
from localcloud.deployer import Deployer, Deployment

ROOT = Path(__file__).resolve().parents[2]
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def endpoint():
    port = free_port()
    server = start_emulator(port)  # with the same emulator fixes as the local cloud
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CA_BUNDLE"]}
    os.environ.update(ENV, AWS_ENDPOINT_URL=url)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_CA_BUNDLE", None)
    from supportlens.adapters import aws

    aws.client.cache_clear()
    yield url
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    aws.client.cache_clear()


@pytest.fixture(scope="session")
def deployment(endpoint) -> Deployment:
    """Tables, queues, bucket and topic built from template.yaml itself (no hand-kept copy)."""
    return Deployer(endpoint).deploy(ROOT / "template.yaml")


@pytest.fixture(scope="session")
def aws(endpoint):
    return lambda service: boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


_MODULES: dict[str, ModuleType] = {}


@pytest.fixture(scope="session")
def handler_module(deployment):
    """Import functions/<x>/app.py as the Lambda service would, with the template's environment."""

    def load(logical_id: str) -> ModuleType:
        if logical_id in _MODULES:
            return _MODULES[logical_id]
        fn = deployment.function(logical_id)
        os.environ.update(fn.environment)
        spec = importlib.util.spec_from_file_location(f"handler_{logical_id}", fn.code_dir / "app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _MODULES[logical_id] = module
        return module

    return load


@pytest.fixture
def ingest(handler_module, lambda_context):
    """IngestFunction's handler for one SQS record (one file notification)."""
    module = handler_module("IngestFunction")
    return lambda record: module.handler({"Records": [record]}, lambda_context)


@pytest.fixture
def enrich(handler_module, lambda_context):
    """EnrichFunction's handler for a batch of SQS records."""
    module = handler_module("EnrichFunction")
    return lambda records: module.handler({"Records": records}, lambda_context)
