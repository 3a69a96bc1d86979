"""Typed settings, built once by a handler from its environment and passed down."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr

if TYPE_CHECKING:
    from .domain.embedding import EmbeddingConfig


class Settings(BaseModel):
    stage: str = "dev"
    data_bucket: str = ""
    tickets_table: str = ""
    files_table: str = ""
    aggregates_table: str = ""
    issues_table: str = ""
    alerts_table: str = ""
    tickets_queue_url: str = ""
    alerts_topic_arn: str = ""
    sender_email: str = ""
    report_recipients: list[str] = Field(default_factory=list)
    cluster_window_days: int = 30
    alert_config_s3_uri: str = ""  # optional override of the alert rules (YAML), see logic/alert_config.py
    alert_config_parameter: str = ""  # ... or an SSM parameter holding it
    # Embeddings: "local" (default) or "gemini" (see domain/embedding.py, adapters/gemini.py).
    embedding_provider: Literal["local", "gemini"] = "local"
    gemini_model: str = "gemini-embedding-001"
    gemini_dimensions: int = 256
    gemini_task_type: str = "CLUSTERING"
    gemini_requests_per_minute: int = 100
    gemini_api_key_parameter: str = ""  # SSM SecureString name (Lambda)
    gemini_api_key: SecretStr | None = None  # GEMINI_API_KEY (CLI, local cloud); never printed
    # Assist: a Gemini model that rewrites recommended replies (empty = no rewriting; needs the API key above).
    assist_generation_model: str = ""
    # Pseudonymous ids: the Secrets Manager secret holding the HMAC key (Lambda), or the key itself (CLI, tests).
    id_hash_key_secret: str = ""
    id_hash_key: SecretStr | None = None
    # Report: how long the e-mail's pre-signed dashboard link stays valid (SigV4 allows up to 7 days).
    report_link_expiry_s: int = Field(default=7 * 24 * 3600, ge=60, le=7 * 24 * 3600)

    def embedding(self) -> "EmbeddingConfig":
        from .domain.embedding import EmbeddingConfig

        return EmbeddingConfig(provider=self.embedding_provider, gemini_model=self.gemini_model,
                               gemini_dimensions=self.gemini_dimensions, gemini_task_type=self.gemini_task_type,
                               gemini_requests_per_minute=self.gemini_requests_per_minute)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        recipients = [a.strip() for a in env.get("REPORT_RECIPIENTS", "").split(",") if a.strip()]
        return cls(
            stage=env.get("STAGE", "dev"),
            data_bucket=env.get("DATA_BUCKET", ""),
            tickets_table=env.get("TICKETS_TABLE", ""),
            files_table=env.get("FILES_TABLE", ""),
            aggregates_table=env.get("AGGREGATES_TABLE", ""),
            issues_table=env.get("ISSUES_TABLE", ""),
            alerts_table=env.get("ALERTS_TABLE", ""),
            tickets_queue_url=env.get("TICKETS_QUEUE_URL", ""),
            alerts_topic_arn=env.get("ALERTS_TOPIC_ARN", ""),
            sender_email=env.get("SENDER_EMAIL", ""),
            report_recipients=recipients,
            cluster_window_days=int(env.get("CLUSTER_WINDOW_DAYS", "30")),
            alert_config_s3_uri=env.get("ALERT_CONFIG_S3_URI", ""),
            alert_config_parameter=env.get("ALERT_CONFIG_PARAMETER", ""),
            embedding_provider=(env.get("EMBEDDING_PROVIDER") or "local").strip().lower(),
            gemini_model=env.get("GEMINI_MODEL") or "gemini-embedding-001",
            gemini_dimensions=int(env.get("GEMINI_DIMENSIONS") or 256),
            gemini_task_type=(env.get("GEMINI_TASK_TYPE") or "CLUSTERING").upper(),
            gemini_requests_per_minute=int(env.get("GEMINI_REQUESTS_PER_MINUTE") or 100),
            gemini_api_key_parameter=env.get("GEMINI_API_KEY_PARAMETER", ""),
            gemini_api_key=env.get("GEMINI_API_KEY") or None,
            assist_generation_model=env.get("ASSIST_GENERATION_MODEL", "").strip(),
            id_hash_key_secret=env.get("ID_HASH_KEY_SECRET", ""),
            id_hash_key=env.get("ID_HASH_KEY") or None,
            report_link_expiry_s=int(env.get("REPORT_LINK_EXPIRY_S") or 7 * 24 * 3600),
        )
