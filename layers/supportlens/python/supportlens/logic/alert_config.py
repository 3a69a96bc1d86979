"""Which alert rules are in force: the shipped defaults, or an operator's override from S3
(ALERT_CONFIG_S3_URI) or SSM Parameter Store (ALERT_CONFIG_PARAMETER).

An override that cannot be read or does not validate is ignored: the defaults stay in force
and the reason (field paths and messages, never ticket data) is logged as an error. The
result is cached per container and re-read every few minutes, so a changed override takes
effect without a redeploy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlparse

from ..adapters import s3
from ..adapters.aws import client
from ..domain.alerts import DEFAULT_CONFIG, AlertConfig, AlertConfigError, load_config, parse_config
from ..observability import logger
from ..settings import Settings

REFRESH_S = 300


@dataclass
class LoadedConfig:
    config: AlertConfig
    source: str  # "defaults", "s3://...", "ssm:/name"
    error: str | None = None  # why an override was rejected


def read_override(settings: Settings) -> tuple[str, bytes] | None:
    """(source, raw text) of the configured override, or None when none is configured."""
    if settings.alert_config_s3_uri:
        uri = urlparse(settings.alert_config_s3_uri)
        if uri.scheme != "s3" or not uri.netloc or not uri.path.strip("/"):
            raise AlertConfigError(f"ALERT_CONFIG_S3_URI must look like s3://bucket/key.yaml, not {settings.alert_config_s3_uri!r}")
        return settings.alert_config_s3_uri, s3.get_bytes(uri.netloc, uri.path.lstrip("/"))
    if settings.alert_config_parameter:
        value = client("ssm").get_parameter(Name=settings.alert_config_parameter, WithDecryption=True)["Parameter"]["Value"]
        return f"ssm:{settings.alert_config_parameter}", value.encode()
    return None


def resolve(settings: Settings) -> LoadedConfig:
    defaults = load_config(DEFAULT_CONFIG)
    try:
        found = read_override(settings)
        if found is None:
            return LoadedConfig(defaults, "defaults")
        source, raw = found
        return LoadedConfig(parse_config(raw), source)
    except AlertConfigError as exc:
        error = str(exc)
    except Exception as exc:  # unreadable (missing object/parameter, access denied): keep alerting on defaults
        error = f"alert rules override unreadable: {type(exc).__name__}: {str(exc)[:300]}"
    source = settings.alert_config_s3_uri or f"ssm:{settings.alert_config_parameter}"
    logger().error("alert rules override rejected; using the defaults", extra={"source": source, "error": error[:2000]})
    return LoadedConfig(defaults, "defaults", error)


class ConfigCache:
    def __init__(self, refresh_s: float = REFRESH_S) -> None:
        self.refresh_s = refresh_s
        self.loaded: LoadedConfig | None = None
        self.checked = 0.0

    def get(self, settings: Settings) -> AlertConfig:
        if self.loaded is None or time.monotonic() - self.checked >= self.refresh_s:
            self.loaded = resolve(settings)
            self.checked = time.monotonic()
        return self.loaded.config
