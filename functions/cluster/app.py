"""ClusterFunction (scheduled): group recent tickets into issues; publish the centroids model."""

import os

from supportlens.logic.cluster import run_clustering
from supportlens.observability import logger
from supportlens.settings import Settings

SETTINGS = Settings.from_env(os.environ)


@logger().inject_lambda_context
def handler(event, context):
    window = (event or {}).get("window_days") if isinstance(event, dict) else None
    return run_clustering(SETTINGS, int(window) if window else None)
