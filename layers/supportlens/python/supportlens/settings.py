"""Typed settings, built once by a handler from its environment and passed down."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field


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
        )
