"""The :class:`Settings` model: every setting, its variable (the field's alias), default and
accepted values. Read through :func:`~jupiter_common.settings.load_settings`."""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from jupiter_common.errors import SettingsError
from jupiter_common.registry import get_job, job_names
from jupiter_common.settings.pem import PEM_KINDS, check_pem, no_password, ssl_reason
from jupiter_common.settings.ports import parse_ports

JOB_NAMES: Final = job_names()
"""The jobs of :mod:`jupiter_common.registry` when this module was imported; validation reads the
registry itself (``job_names()``) each time."""
NO_JOB: Final = ""
"""The ``job`` of settings loaded for no job in particular (:func:`load_shared_settings`): what a
tool that acts on every job (``query``, ``status``, ``dead-letters``) reads."""
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_KAFKA_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

StartingOffsets = Literal["group-offsets", "earliest", "latest"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseModel):
    """Every setting a job reads. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    job: str
    """A job of :mod:`jupiter_common.registry`, or ``NO_JOB``."""

    kafka_bootstrap: str = Field("kafka:9092", alias="KAFKA_BOOTSTRAP", min_length=1)
    kafka_topic: str = Field("sessions-topic", alias="KAFKA_TOPIC", pattern=_KAFKA_NAME.pattern)
    kafka_consumer_group: str = Field("", alias="KAFKA_CONSUMER_GROUP")
    kafka_starting_offsets: StartingOffsets = Field("group-offsets", alias="KAFKA_STARTING_OFFSETS")
    bounded: bool = Field(False, alias="JUPITER_BOUNDED")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", alias="KAFKA_SASL_MECHANISM"
    )
    kafka_sasl_username: str = Field("", alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), alias="KAFKA_SASL_PASSWORD")
    kafka_ssl_ca_location: str = Field("", alias="KAFKA_SSL_CA_LOCATION")
    dead_letter_topic: str = Field(
        "sessions-dead-letter", alias="DEAD_LETTER_TOPIC", pattern=_KAFKA_NAME.pattern
    )

    clickhouse_host: str = Field("clickhouse", alias="CLICKHOUSE_HOST", min_length=1)
    clickhouse_port: int = Field(8123, alias="CLICKHOUSE_PORT", ge=1, le=65535)
    clickhouse_user: str = Field("default", alias="CLICKHOUSE_USER", min_length=1)
    clickhouse_password: SecretStr = Field(SecretStr(""), alias="CLICKHOUSE_PASSWORD")
    clickhouse_database: str = Field(
        "default", alias="CLICKHOUSE_DATABASE", pattern=_IDENTIFIER.pattern
    )
    clickhouse_secure: bool = Field(False, alias="CLICKHOUSE_SECURE")
    # TLS (with CLICKHOUSE_SECURE=true): PEM files, read where the clients are made, in the
    # driver and in every TaskManager's Python workers (see _tls_file).
    clickhouse_ca_cert: str = Field("", alias="CLICKHOUSE_CA_CERT")
    clickhouse_client_cert: str = Field("", alias="CLICKHOUSE_CLIENT_CERT")
    clickhouse_client_key: str = Field("", alias="CLICKHOUSE_CLIENT_KEY")
    clickhouse_verify: bool = Field(True, alias="CLICKHOUSE_VERIFY")
    clickhouse_embedded_path: str = Field("", alias="CLICKHOUSE_EMBEDDED_PATH")

    # Rows per Arrow batch between Flink and Python, so per insert (measured: 10k beats 1k and
    # 50k); a batch is cut short by SINK_FLUSH_INTERVAL_MS and by every checkpoint.
    sink_batch_size: int = Field(10_000, alias="SINK_BATCH_SIZE", ge=1, le=1_000_000)
    # The longest a record waits in each Python step. 500 ms keeps events-job's two steps under
    # 1 s at p50 and 2 s at p99 at 10k messages/s (1 s: 1.3 s and 2.7 s) at no measurable cost
    # in throughput; it means up to two inserts a second per table and subtask.
    sink_flush_interval_ms: int = Field(500, alias="SINK_FLUSH_INTERVAL_MS", ge=10, le=3_600_000)
    sink_max_retries: int = Field(5, alias="SINK_MAX_RETRIES", ge=0, le=100)
    sink_retry_backoff_ms: int = Field(200, alias="SINK_RETRY_BACKOFF_MS", ge=1, le=30_000)
    # Records Flink hands a Python function before it waits for the results: larger than a batch
    # so that the JVM keeps reading while Python works (measured: 10x the batch, +40%).
    flink_python_bundle_size: int = Field(
        100_000, alias="FLINK_PYTHON_BUNDLE_SIZE", ge=1, le=10_000_000
    )

    session_state_ttl_ms: int = Field(
        86_400_000, alias="SESSION_STATE_TTL_MS", ge=1_000, le=31_536_000_000
    )

    flink_parallelism: int = Field(1, alias="FLINK_PARALLELISM", ge=1, le=1024)
    flink_max_parallelism: int = Field(128, alias="FLINK_MAX_PARALLELISM", ge=1, le=32768)
    flink_job_name: str = Field("", alias="FLINK_JOB_NAME", pattern=r"^$|^[A-Za-z0-9._-]{1,128}$")
    flink_checkpoint_interval_ms: int = Field(
        10_000, alias="FLINK_CHECKPOINT_INTERVAL_MS", ge=100, le=86_400_000
    )
    # Checkpoints hold the Kafka offsets and the rows not yet written; use durable storage
    # shared by the Flink cluster in production (a volume, S3 ...).
    flink_checkpoint_dir: str = Field(
        "file:///tmp/jupiter/checkpoints", alias="FLINK_CHECKPOINT_DIR"
    )
    flink_state_backend: Literal["hashmap", "rocksdb"] = Field(
        "hashmap", alias="FLINK_STATE_BACKEND"
    )
    flink_connector_jars: str = Field("", alias="FLINK_CONNECTOR_JARS")
    flink_restore_path: str = Field("", alias="FLINK_RESTORE_PATH")
    flink_resume: Literal["latest", "none"] = Field("latest", alias="FLINK_RESUME")

    log_level: LogLevel = Field("INFO", alias="LOG_LEVEL")
    # text: readable lines; json: one JSON object per line from the driver and the Python
    # workers (jupiter_common.logs), for a log pipeline.
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")

    # Local runs only (a MiniCluster in the job's process): the Flink web UI's port, a range
    # (the first free one is taken), 0 for any free port, or off (jupiter_common.flink.web_ui).
    flink_web_ui_port: str = Field("8081-8099", alias="FLINK_WEB_UI_PORT")
    # Seconds between the one-line status a job in the foreground prints on a terminal; 0: none
    # (jupiter_common.flink.status_line).
    status_interval_s: int = Field(5, alias="STATUS_INTERVAL_S", ge=0, le=3600)

    # Flink's Prometheus reporter for local runs (a MiniCluster in the job's process): a port,
    # a range (the first free one is taken), or off (jupiter_common.flink.metrics). A
    # Flink cluster configures its reporter itself (infra/compose, infra/k8s).
    metrics_port: str = Field("9249-9259", alias="METRICS_PORT")

    @field_validator("job")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value != NO_JOB and value not in job_names():
            raise ValueError(f"must be one of {', '.join(job_names())}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("flink_web_ui_port", mode="before")
    @classmethod
    def _web_ui_port(cls, value: Any) -> Any:
        return parse_ports(value, example="8081-8099", allow_any=True)

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _metrics_port(cls, value: Any) -> Any:
        return parse_ports(value, example="9249-9259")

    @field_validator("kafka_consumer_group")
    @classmethod
    def _printable(cls, value: str) -> str:
        if value and not value.isprintable():
            raise ValueError("must be printable text")
        return value

    @field_validator("clickhouse_ca_cert", "clickhouse_client_cert", "clickhouse_client_key")
    @classmethod
    def _tls_file(cls, value: str, info: ValidationInfo) -> str:
        """A readable PEM file of the right kind, as an absolute path (the Python workers run
        in other directories). Symbolic links are kept, not resolved: a Kubernetes Secret
        volume swaps its files behind them when the Secret changes."""
        if not value:
            return value
        path = os.path.abspath(Path(value).expanduser())
        check_pem(path, PEM_KINDS[str(info.field_name)])
        return path

    @model_validator(mode="after")
    def _tls_needs_https(self) -> Settings:
        given = [
            alias(name)
            for name in ("clickhouse_ca_cert", "clickhouse_client_cert", "clickhouse_client_key")
            if getattr(self, name)
        ]
        if not self.clickhouse_verify:
            given.append("CLICKHOUSE_VERIFY=false")
        if given and not self.clickhouse_secure:
            raise ValueError(
                f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'}"
                " CLICKHOUSE_SECURE=true: TLS settings apply to HTTPS only"
            )
        return self

    @model_validator(mode="after")
    def _client_cert_with_its_key(self) -> Settings:
        cert, key = self.clickhouse_client_cert, self.clickhouse_client_key
        if bool(cert) != bool(key):
            missing = "CLICKHOUSE_CLIENT_KEY" if cert else "CLICKHOUSE_CLIENT_CERT"
            raise ValueError(
                "CLICKHOUSE_CLIENT_CERT and CLICKHOUSE_CLIENT_KEY go together (mutual TLS):"
                f" {missing} is not set"
            )
        if cert:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, no_password)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"CLICKHOUSE_CLIENT_KEY={key!r} is not the key of CLICKHOUSE_CLIENT_CERT="
                    f"{cert!r}: {ssl_reason(exc)}"
                ) from None
        return self

    @model_validator(mode="after")
    def _bounded_runs_start_fresh(self) -> Settings:
        if self.bounded and self.flink_restore_path:
            raise ValueError(
                "FLINK_RESTORE_PATH cannot be used with JUPITER_BOUNDED=true: a bounded run starts"
                " from the consumer group's offsets with fresh state (a restored Kafka split keeps"
                " the end offset of the run that wrote it); resume streaming instead"
            )
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs"
                " KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    @model_validator(mode="after")
    def _parallelism_within_max(self) -> Settings:
        if self.flink_parallelism > self.flink_max_parallelism:
            raise ValueError(
                "FLINK_PARALLELISM must not exceed FLINK_MAX_PARALLELISM"
                f" ({self.flink_max_parallelism})"
            )
        return self

    @property
    def embedded(self) -> bool:
        """True when the embedded ClickHouse engine (chDB) is the store, not a server."""
        return bool(self.clickhouse_embedded_path)

    @property
    def consumer_group(self) -> str:
        return self.kafka_consumer_group or get_job(self._job()).consumer_group

    @property
    def job_name(self) -> str:
        return self.flink_job_name or get_job(self._job()).flink_job_name

    def _job(self) -> str:
        """The job's name; the per-job values (group, job name, checkpoints) need one."""
        if self.job == NO_JOB:
            raise SettingsError(
                "these settings belong to no job (load_shared_settings): use for_job(name)"
            )
        return self.job

    def for_job(self, job: str) -> Settings:
        """These settings as job ``job`` reads them (its consumer group, job name and
        checkpoint folder); raises :class:`SettingsError` for an unknown job."""
        if job not in job_names():
            raise SettingsError(f"job: must be one of {', '.join(job_names())}, not {job!r}")
        return self.model_copy(update={"job": job})

    @property
    def checkpoint_root(self) -> str:
        """Where this job's checkpoints and savepoints go: one folder per job name, so a job
        finds its own latest state to resume from. Empty when no checkpoint dir is set."""
        base = self.flink_checkpoint_dir.rstrip("/")
        if not base:
            return ""
        # Bounded runs keep theirs apart: a restored Kafka split keeps the end offset of the run
        # that wrote it, so bounded and streaming state must never be mixed up.
        root = f"{base}/{self._job()}/{self.job_name}"
        return f"{root}/bounded" if self.bounded else root

    @property
    def savepoint_dir(self) -> str:
        """Where this job's savepoints go (under :attr:`checkpoint_root`)."""
        return f"{self.checkpoint_root}/savepoints" if self.checkpoint_root else ""

    def redacted(self) -> dict[str, object]:
        """The settings by variable name, safe to log: the password is never included."""
        values = self.model_dump(by_alias=True, exclude={"job"})
        for field in SECRET_FIELDS:
            secret: SecretStr = getattr(self, field)
            values[alias(field)] = "***" if secret.get_secret_value() else ""
        return values

    @classmethod
    def variable_names(cls) -> frozenset[str]:
        """Every setting's environment variable (the fields' aliases; see also
        :func:`secret_file_variable_names`)."""
        return frozenset(
            field.alias for field in cls.model_fields.values() if field.alias is not None
        )


SECRET_FIELDS: Final = frozenset(
    name for name, field in Settings.model_fields.items() if field.annotation is SecretStr
)
"""Settings whose values are never shown: in logs, ``redacted()`` and error messages."""


def alias(field: str) -> str:
    """The environment variable of setting ``field``."""
    return Settings.model_fields[field].alias or field
