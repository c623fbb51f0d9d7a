"""Bus settings (`ENCURTA_BUS__...`): delivery, shared by every transport, and Kafka's.

Kept apart from the transports so that reading settings never imports aiokafka, which a
process on the in-process bus does not need.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeliverySettings(BaseModel):
    relay_batch_size: int = Field(default=1000, ge=1, le=10_000)
    relay_poll_seconds: float = Field(
        default=1.0, gt=0, description="Fallback poll; NOTIFY wakes the relay sooner."
    )
    relay_coalesce_seconds: float = Field(
        default=0.05,
        ge=0,
        description="After a wake-up, wait this long so one batch carries many commits' "
        "events: fewer, larger transactions downstream, for a little more lag.",
    )
    handoff_limit: int = Field(
        default=20_000,
        ge=0,
        description="Committed rows of a hot writer (clicks) that may wait in memory for "
        "the relay, which then publishes them without claiming them back from the outbox "
        "and deletes them once sent; past it, or at 0, they are claimed (and kept) like "
        "any other row.",
    )
    outbox_retention_seconds: int = Field(
        default=3600, ge=0, description="How long sent outbox rows are kept (replay horizon)."
    )
    inbox_ttl_seconds: int = Field(
        default=8 * 24 * 3600,
        ge=60,
        description="How long processed event ids are remembered; longer than any replay.",
    )
    parked_retention_days: int = Field(
        default=30,
        ge=1,
        description="How long parked events wait for a person to replay them.",
    )
    max_attempts: int = Field(default=5, ge=1, le=50)
    backoff_base_seconds: float = Field(default=0.2, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)


class UnsafeKafkaSettings(ValueError):
    """A setting that would lose or duplicate-count events; the message names it."""


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "localhost:9092"
    client_id: str = "encurta"
    group_prefix: str = Field(default="encurta", description="Consumer group: PREFIX-MODULE.")
    topic_prefix: str = Field(default="", description="Prepended to every topic name.")
    partitions: int = Field(default=6, ge=1, description="For topics encurta creates.")
    replication_factor: int = Field(default=1, ge=1, description="3 on a real cluster.")
    acks: str = Field(default="all", description="Must be 'all'.")
    enable_auto_commit: bool = Field(default=False, description="Must be false.")
    enable_idempotence: bool = Field(
        default=True, description="Off only for brokers without it (Tansu in tests)."
    )
    session_timeout_ms: int = Field(default=10_000, ge=100)
    heartbeat_interval_ms: int = Field(default=3_000, ge=50)
    max_batch: int = Field(default=1000, ge=1)
    linger_ms: int = Field(default=5, ge=0)
    request_timeout_ms: int = Field(default=15_000, ge=1000)

    def check_safe(self) -> None:
        if str(self.acks).lower() not in {"all", "-1"}:
            raise UnsafeKafkaSettings(
                f"ENCURTA_BUS__KAFKA__ACKS={self.acks}: only 'all' is accepted; with fewer "
                "acknowledgements a broker failure loses events the outbox counts as sent."
            )
        if self.enable_auto_commit:
            raise UnsafeKafkaSettings(
                "ENCURTA_BUS__KAFKA__ENABLE_AUTO_COMMIT=true: offsets must be committed only "
                "after the consumer's transaction commits, or a crash loses events."
            )
