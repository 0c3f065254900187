"""One way to get a ClickHouse client, for the embedded engine and for a server alike.

clickhouse-connect gives the same ``Client`` API over HTTP and over chDB (``chdb://`` DSN), so
everything above this module — DDL, the writer, queries — is one code path.
"""

from __future__ import annotations

import logging

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from jupiter_common.settings import Settings
from jupiter_common.tables import TableSpec, quote_identifier

log = logging.getLogger(__name__)


def connect(settings: Settings) -> Client:
    """A client for the configured store. The database is not selected: callers qualify names,
    so the database can be created by :func:`ensure_table` first."""
    if settings.embedded:
        return clickhouse_connect.get_client(dsn=f"chdb://{settings.clickhouse_embedded_path}")
    return clickhouse_connect.get_client(
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        username=settings.clickhouse_user,
        password=settings.clickhouse_password.get_secret_value(),
        secure=settings.clickhouse_secure,
        compress="lz4",
        connect_timeout=10,
        send_receive_timeout=300,
        autogenerate_session_id=False,
    )


def ensure_table(client: Client, table: TableSpec, database: str) -> None:
    """Create ``database`` and ``table`` when missing, then check the table has the columns
    this version writes. Idempotent; safe to run from every job start and every writer."""
    from jupiter_common.errors import TableSchemaError

    client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
    client.command(table.ddl(database))
    found = _column_types(client, table, database)
    expected = {c.name: c.type for c in table.columns}
    wrong = {
        name: (kind, found.get(name))
        for name, kind in expected.items()
        if _normalise(found.get(name)) != _normalise(kind)
    }
    if wrong:
        details = ", ".join(
            f"{n}: expected {e}, found {f or 'nothing'}" for n, (e, f) in wrong.items()
        )
        raise TableSchemaError(
            f"{table.qualified(database)} does not match Jupiter's schema: {details}"
        )
    log.info("table %s ready", table.qualified(database))


def _column_types(client: Client, table: TableSpec, database: str) -> dict[str, str]:
    result = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": database, "t": table.name},
    )
    return {str(name): str(kind) for name, kind in result.result_rows}


def _normalise(kind: str | None) -> str:
    return "" if kind is None else kind.replace(" ", "").replace('"', "'")
