"""Entities through the real Enrich handler on moto (tables from template.yaml): a ticket event
goes in, the stored ticket carries entities, and no PII value is stored anywhere in it."""

from __future__ import annotations

import json
import uuid

from supportlens.adapters import dynamo
from tests.integration.test_pipeline_handlers import sqs_record

EMAIL = "maria.lopez@example.org"
PHONE = "+1 (212) 555-0187"


def test_enrich_handler_stores_entities_without_pii(deployment, handler_module, lambda_context):
    module = handler_module("EnrichFunction")
    with_entities, without = f"ent-{uuid.uuid4().hex[:8]}", f"ent-{uuid.uuid4().hex[:8]}"
    texts = {
        with_entities: f"My Xbox One was charged $59.99 twice on order #ZX90817, email {EMAIL} or call {PHONE}. "
                       "Also my Xbox Live renewal failed.",
        without: "thanks, that fixed it",
    }
    records = [
        sqs_record(json.dumps({"schema": "supportlens.ticket/v1", "ticket": {
            "ticket_id": ticket_id, "source": "ticket", "author_id": "c-ent", "company": "microsoft",
            "channel": "email", "text": body, "created_at": "2024-03-04T10:00:00Z"}}))
        for ticket_id, body in texts.items()
    ]
    assert module.handler({"Records": records}, lambda_context) == {"batchItemFailures": []}

    table = deployment.outputs["TicketsTableName"]
    stored = dynamo.get(table, {"ticket_id": with_entities})
    assert stored["entities"] == [
        {"label": "PRODUCT", "text": "Xbox"},
        {"label": "MONEY", "text": "$59.99"},
        {"label": "ORDER_ID", "text": "[ORDER_ID]"},
        {"label": "EMAIL", "text": "[EMAIL]"},
        {"label": "PHONE", "text": "[PHONE]"},
        {"label": "PRODUCT", "text": "Xbox Live"},
    ]
    flat = json.dumps(stored, default=str)
    for secret in (EMAIL, "555-0187", "ZX90817"):
        assert secret not in flat
    assert "entities" not in dynamo.get(table, {"ticket_id": without})
