"""AssistFunction (Function URL, AWS_IAM auth, or direct invoke): classify / similar / recommend.

Contract: {"operation": "classify|similar|recommend", "text": "...", "k": 5, "company": "optional"} -> JSON.
It reads only the models Cluster publishes under models/ (see supportlens.logic.assist).
"""

import os

from supportlens.logic.assist import Assistant, handle_event
from supportlens.observability import logger
from supportlens.settings import Settings

SETTINGS = Settings.from_env(os.environ)
ASSISTANT = Assistant(SETTINGS)  # models are cached per container and re-checked every few minutes


@logger().inject_lambda_context
def handler(event, context):
    return handle_event(ASSISTANT, event)
