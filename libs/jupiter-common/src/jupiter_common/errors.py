"""Typed errors. Every error Jupiter raises on purpose derives from :class:`JupiterError`."""

from __future__ import annotations


class JupiterError(Exception):
    """Root of Jupiter's own errors."""


class SettingsError(JupiterError):
    """A setting is missing or invalid; the message names the environment variable."""


class ClickHouseWriteError(JupiterError):
    """An insert failed for good: a permanent error, or a transient one past its retries.

    Raising it fails the Flink task; the rows stay in Flink state (or are re-read from Kafka)
    and are written again after the restart, so nothing is lost.
    """

    def __init__(self, message: str, *, table: str, rows: int, attempts: int) -> None:
        super().__init__(message)
        self.table = table
        self.rows = rows
        self.attempts = attempts


class ClickHouseTLSError(JupiterError):
    """The TLS connection to ClickHouse failed for want of trust: the server's certificate cannot
    be verified, or the server refuses the client's (missing) certificate."""


class TableSchemaError(JupiterError):
    """An existing ClickHouse table does not have the columns this version of Jupiter writes,
    and adding them is not safe without a person deciding how (see
    docs/changing-a-table.md)."""


class ColumnTypeChangedError(TableSchemaError):
    """A column of an existing table has another type in ClickHouse than in Jupiter's table
    definition. ``changes`` holds ``(column, type in ClickHouse, type in Jupiter)`` for each."""

    def __init__(self, table: str, changes: tuple[tuple[str, str, str], ...]) -> None:
        described = "; ".join(
            f"column {column} is {found} in ClickHouse but {expected} in Jupiter's definition"
            for column, found, expected in changes
        )
        super().__init__(
            f"{table}: {described}. Changing a column's type needs a manual migration"
            " (docs/changing-a-table.md); the job does not start"
        )
        self.table = table
        self.changes = changes


class RowColumnsError(JupiterError):
    """The columns a job hands a table's writer are not the table's insert columns: found when
    the job is built, before it is submitted, or at a batch that does not fit."""

    def __init__(
        self,
        message: str,
        *,
        table: str,
        missing: tuple[str, ...],
        extra: tuple[str, ...],
        misordered: tuple[str, ...],
    ) -> None:
        super().__init__(message)
        self.table = table
        self.missing = missing
        self.extra = extra
        self.misordered = misordered


class ConnectorJarNotFoundError(JupiterError):
    """The Flink Kafka connector jar cannot be found where the settings say it is."""


class DeadLetterTopicError(JupiterError):
    """``DEAD_LETTER_TOPIC`` cannot take every dead letter a job may write (its
    ``max.message.bytes`` is too small); found at start-up, before the job runs."""


class MetricsPortError(JupiterError):
    """No port of ``METRICS_PORT`` is free for a local run's Prometheus endpoint."""
