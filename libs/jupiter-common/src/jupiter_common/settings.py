"""Settings from environment variables.

Names and defaults follow the single-process PyFlink service Jupiter replaces
(``KAFKA_BOOTSTRAP=kafka:9092``, ``CLICKHOUSE_HOST=clickhouse`` ...), so a container gets sensible
values with nothing set.
Each job passes its own name, which sets its default consumer group and Flink job name.

Settings are read once, in the job's driver process, and handed to the Flink functions as a
frozen value: the Python workers never read the environment themselves.

Secrets (``CLICKHOUSE_PASSWORD``, ``KAFKA_SASL_PASSWORD``) can also be given as files, the
``*_FILE`` convention of container secrets: ``CLICKHOUSE_PASSWORD_FILE=/run/secrets/...`` reads
the password from that file, so no secret needs to be an environment variable at all. The driver
removes the secret variables from its own environment before it starts Flink
(:func:`drop_secret_variables`): Flink's Python runner logs the whole environment of its Python
workers, which it inherits from the JVM, which inherits it from the driver.

TLS to ClickHouse is given as PEM files (``CLICKHOUSE_CA_CERT``, ``CLICKHOUSE_CLIENT_CERT``,
``CLICKHOUSE_CLIENT_KEY``): paths, not contents. They are checked here, at start-up, and read again
by every client, in the driver and in the TaskManagers' Python workers, so each file must be at
the same path on every Flink process.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from jupiter_common.errors import SettingsError
from jupiter_common.registry import get_job, job_names

JOB_NAMES: Final = job_names()
"""The jobs of :mod:`jupiter_common.registry` when this module was imported; validation reads the
registry itself (``job_names()``) each time."""
NO_JOB: Final = ""
"""The ``job`` of settings loaded for no job in particular (:func:`load_shared_settings`): what a
tool that acts on every job (``query``, ``status``, ``dead-letters``) reads."""
SECRET_FILE_SUFFIX: Final = "_FILE"  # noqa: S105 - a name suffix, not a password
"""``<secret variable>_FILE`` names a file that holds the secret (see the module docstring)."""
_SECRET_FILE_MAX_BYTES: Final = 64 * 1024
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_KAFKA_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_PEM_FILE_MAX_BYTES: Final = 1024 * 1024
_PEM_KINDS: Final = {
    "clickhouse_ca_cert": "CA",
    "clickhouse_client_cert": "certificate",
    "clickhouse_client_key": "key",
}
_SSL_LOCATION: Final = re.compile(r"\s*\(_ssl\.c:\d+\)$")

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

    @field_validator("log_format", "flink_web_ui_port", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("flink_web_ui_port")
    @classmethod
    def _web_ui_port(cls, value: str) -> str:
        found = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", value)
        if value == "off" or (found and found[1] == "0" and not found[2]):
            return value
        if not found or not 1 <= int(found[1]) <= int(found[2] or found[1]) <= 65535:
            raise ValueError(
                "must be a port or a range first-last (1-65535), 0 (any free port), or off"
            )
        return value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _metrics_port(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip().lower()
        if value in ("", "off"):
            return "off"
        low, dash, high = value.partition("-")
        if not (low.isdigit() and (high.isdigit() or not dash)):
            raise ValueError("must be a port, a range like 9249-9259, or off")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= 65535:
            raise ValueError("must be a port, a range like 9249-9259 (1-65535), or off")
        return f"{first}-{last}" if dash else str(first)

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
        _check_pem(path, _PEM_KINDS[str(info.field_name)])
        return path

    @model_validator(mode="after")
    def _tls_needs_https(self) -> Settings:
        given = [
            _alias(name)
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
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, _no_password)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"CLICKHOUSE_CLIENT_KEY={key!r} is not the key of CLICKHOUSE_CLIENT_CERT="
                    f"{cert!r}: {_ssl_reason(exc)}"
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
            values[_alias(field)] = "***" if secret.get_secret_value() else ""
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


def _alias(field: str) -> str:
    return Settings.model_fields[field].alias or field


SECRET_VARIABLES: Final = frozenset(_alias(field) for field in SECRET_FIELDS)
"""The environment variables that hold secrets: ``CLICKHOUSE_PASSWORD``, ``KAFKA_SASL_PASSWORD``."""


def secret_file_variable_names() -> frozenset[str]:
    """``CLICKHOUSE_PASSWORD_FILE``, ``KAFKA_SASL_PASSWORD_FILE``: where to read each secret from."""
    return frozenset(name + SECRET_FILE_SUFFIX for name in SECRET_VARIABLES)


def drop_secret_variables(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove the secret variables from ``environ`` (default: this process's environment, so that
    no process started afterwards inherits them); returns the names removed.

    The job's driver calls this once it has its settings and before it starts Flink: Flink's
    Python runner (Beam) logs the whole environment of the Python workers, which inherit it from
    the JVM, which inherits it from the driver. The ``*_FILE`` variables stay: they are paths.
    """
    env = os.environ if environ is None else environ
    removed = sorted(name for name in SECRET_VARIABLES if name in env)
    for name in removed:
        del env[name]
    return removed


def load_settings(
    job: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Read the settings for ``job`` from ``environ`` (default: ``os.environ``).

    Variables set to the empty string count as unset. A secret can be given as a file instead:
    ``<NAME>_FILE`` (``CLICKHOUSE_PASSWORD_FILE`` ...), not together with ``<NAME>``.
    ``overrides`` (by field name) win over the environment; the job's command line uses them.
    Raises :class:`SettingsError` naming every invalid variable and what it accepts, never a
    secret.
    """
    env = os.environ if environ is None else environ
    names = Settings.variable_names()
    values: dict[str, object] = {name: env[name] for name in names if env.get(name, "") != ""}
    problems = _read_secret_files(env, values)
    for field, value in (overrides or {}).items():
        values[_alias(field)] = value
    try:
        settings = Settings.model_validate({"job": job, **values})
    except ValidationError as exc:
        raise SettingsError(_invalid([*problems, *_explain(exc, values)])) from None
    if problems:
        raise SettingsError(_invalid(problems)) from None
    return _resolve_paths(settings)


def load_shared_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings every job shares (Kafka, ClickHouse, checkpoint directory ...), read for no
    job in particular: for tools that act on all jobs. :meth:`Settings.for_job` gives a job's
    own view (consumer group, job name, checkpoint folder). Raises :class:`SettingsError` as
    :func:`load_settings` does."""
    return load_settings(NO_JOB, environ)


def _invalid(problems: list[str]) -> str:
    return "invalid settings:\n  " + "\n  ".join(problems)


def _read_secret_files(env: Mapping[str, str], values: dict[str, object]) -> list[str]:
    """Put the secrets given as ``<NAME>_FILE`` into ``values``; returns what is wrong (a file
    that cannot be read, a secret given both ways), naming the variable, never the secret."""
    problems: list[str] = []
    for name in sorted(SECRET_VARIABLES):
        file_variable = name + SECRET_FILE_SUFFIX
        path = env.get(file_variable, "")
        if not path:
            continue
        if name in values:
            del values[name]
            problems.append(f"{name} and {file_variable} are both set: set only one of them")
            continue
        try:
            secret = _read_secret_file(path)
        except _UnreadableSecretError as exc:
            problems.append(f"{file_variable}={path!r}: cannot read the secret: {exc}")
            continue
        if secret:  # an empty file counts as unset, as an empty variable does
            values[name] = secret
    return problems


class _UnreadableSecretError(Exception):
    """Why a secret file cannot be read; never includes the file's content."""


def _read_secret_file(path: str) -> str:
    """The secret in ``path``: its text without one trailing line break (``echo secret > file``
    adds one; a Kubernetes Secret file has none)."""
    try:
        with Path(path).expanduser().open("rb") as file:
            data = file.read(_SECRET_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise _UnreadableSecretError(exc.strerror or type(exc).__name__) from None
    if len(data) > _SECRET_FILE_MAX_BYTES:
        raise _UnreadableSecretError(f"larger than {_SECRET_FILE_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _UnreadableSecretError("not UTF-8 text") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def _check_pem(path: str, kind: str) -> None:
    """Raise ``ValueError`` saying why ``path`` is not a usable PEM file of ``kind`` (``CA``,
    ``certificate`` or ``key``). The message never quotes the file: a key is a secret."""
    try:
        with open(path, "rb") as file:
            data = file.read(_PEM_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None
    if len(data) > _PEM_FILE_MAX_BYTES:
        raise ValueError(f"cannot read the file: larger than {_PEM_FILE_MAX_BYTES} bytes")
    if kind == "key":
        if b"PRIVATE KEY-----" not in data:
            raise ValueError("not a PEM private key (no -----BEGIN ... PRIVATE KEY----- line)")
        if b"ENCRYPTED" in data:
            raise ValueError(
                "the key is encrypted: give it unencrypted (the ClickHouse client takes no key"
                " password) and protect the file instead"
            )
        return
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError("not a PEM certificate (no -----BEGIN CERTIFICATE----- line)")
    if kind == "CA":
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"not a PEM CA bundle: {_ssl_reason(exc)}") from None


def _no_password() -> str:
    """Key password callback: none, so that OpenSSL never prompts on a terminal."""
    return ""


def _ssl_reason(exc: BaseException) -> str:
    """An ssl/OS error as text, without the location in Python's C source."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return _SSL_LOCATION.sub("", text)


def _resolve_paths(settings: Settings) -> Settings:
    """Make the embedded store path absolute: Flink's Python workers run in other directories."""
    if not settings.embedded:
        return settings
    path = Path(settings.clickhouse_embedded_path).expanduser().resolve()
    return settings.model_copy(update={"clickhouse_embedded_path": str(path)})


def _explain(exc: ValidationError, values: Mapping[str, object]) -> list[str]:
    return [_explain_one(error, values) for error in exc.errors(include_url=False)]


def _explain_one(error: ErrorDetails, values: Mapping[str, object]) -> str:
    loc = error["loc"]
    if not loc:
        return str(error["msg"]).removeprefix("Value error, ")
    key = str(loc[0])
    field = Settings.model_fields.get(key)
    name = field.alias if field is not None and field.alias else key
    if name == "job":
        return f"job: must be one of {', '.join(job_names())}"
    secret = key in SECRET_FIELDS or name in {_alias(f) for f in SECRET_FIELDS}
    shown = "***" if secret else repr(values.get(name, values.get(key)))
    return f"{name}={shown}: {_accepted(error)}"


def _accepted(error: ErrorDetails) -> str:
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    kind = error["type"]
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "int_parsing" or kind == "int_type":
        return "must be a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    if kind == "extra_forbidden":
        return "is not a setting"
    return str(error["msg"]).removeprefix("Value error, ")
