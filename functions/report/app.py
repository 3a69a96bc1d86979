"""ReportFunction (scheduled daily and weekly): email the stakeholder report and archive it."""

import os

from supportlens.logic.report import send_report
from supportlens.observability import logger
from supportlens.settings import Settings

SETTINGS = Settings.from_env(os.environ)


@logger().inject_lambda_context
def handler(event, context):
    period = (event or {}).get("period", "7d") if isinstance(event, dict) else "7d"
    return send_report(SETTINGS, period)
