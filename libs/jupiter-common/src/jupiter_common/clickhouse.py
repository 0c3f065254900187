"""One way to get a ClickHouse client, for the embedded engine and for a server alike.

clickhouse-connect gives the same ``Client`` API over HTTP and over chDB (``chdb://`` DSN), so
everything above this module — DDL, the writer, queries — is one code path.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Final

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from jupiter_common.errors import ClickHouseTLSError
from jupiter_common.evolution import plan
from jupiter_common.settings import Settings
from jupiter_common.tables import TableSpec, quote_identifier

log = logging.getLogger(__name__)

_SSL_ERROR = re.compile(r"\[SSL: [A-Z0-9_]+\][^(')\]]*")


def connect(settings: Settings) -> Client:
    """A client for the configured store. The database is not selected: callers qualify names,
    so the database can be created by :func:`ensure_table` first.

    Called in the job's driver and in every Python worker of the TaskManagers (each writing
    function opens its own client), so the TLS files must be at the same paths there.
    Raises :class:`ClickHouseTLSError` when the TLS handshake fails for want of trust."""
    if settings.embedded:
        return clickhouse_connect.get_client(dsn=f"chdb://{settings.clickhouse_embedded_path}")
    try:
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
            **tls_options(settings),
        )
    except DatabaseError as exc:
        tls_error = _tls_failure(exc, settings)
        if tls_error is None:
            raise
        raise tls_error from exc


def tls_options(settings: Settings) -> dict[str, Any]:
    """The TLS arguments of ``clickhouse_connect.get_client`` for ``settings`` (none over plain
    HTTP). Only file paths: the client reads the files itself, nothing here reads a key.

    With a client certificate, ``tls_mode`` says how ClickHouse authenticates the user: without
    a password by the certificate (``mutual``: the user is configured with ``ssl_certificates``),
    with a password by the password, the certificate then only securing the connection
    (``strict``)."""
    if not settings.clickhouse_secure:
        return {}
    _tls_files_readable_here(settings)
    options: dict[str, Any] = {"verify": settings.clickhouse_verify}
    if not settings.clickhouse_verify:
        log.warning(
            "CLICKHOUSE_VERIFY=false: the certificate of the ClickHouse server %s:%d is not"
            " verified, so anyone on the network path can pose as the server",
            settings.clickhouse_host,
            settings.clickhouse_port,
        )
    if settings.clickhouse_ca_cert:
        options["ca_cert"] = settings.clickhouse_ca_cert
    if settings.clickhouse_client_cert:
        options["client_cert"] = settings.clickhouse_client_cert
        options["client_cert_key"] = settings.clickhouse_client_key
        password = settings.clickhouse_password.get_secret_value()
        options["tls_mode"] = "strict" if password else "mutual"
    return options


def _tls_files_readable_here(settings: Settings) -> None:
    """The driver checked the TLS files at start-up; a TaskManager gets only their paths, so a
    file missing there is named here rather than deep in the TLS library."""
    for name in ("clickhouse_ca_cert", "clickhouse_client_cert", "clickhouse_client_key"):
        path = getattr(settings, name)
        if path and not os.access(path, os.R_OK):
            variable = Settings.model_fields[name].alias
            raise ClickHouseTLSError(
                f"{variable}={path} cannot be read on {socket.gethostname()}: the ClickHouse"
                " TLS files must be at the same path on the JobManager and every TaskManager"
            )


def _tls_failure(exc: BaseException, settings: Settings) -> ClickHouseTLSError | None:
    """A clear error for a TLS handshake that failed for want of trust, else None."""
    if not settings.clickhouse_secure:
        return None
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    text = str(cause) if cause is not None else str(exc)
    where = f"ClickHouse server {settings.clickhouse_host}:{settings.clickhouse_port}"
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = getattr(cause, "verify_message", "") or "certificate verify failed"
        trust = (
            f"CLICKHOUSE_CA_CERT={settings.clickhouse_ca_cert}"
            if settings.clickhouse_ca_cert
            else "the system's trusted CAs (set CLICKHOUSE_CA_CERT to the PEM file of a private CA)"
        )
        return ClickHouseTLSError(
            f"the certificate of the {where} cannot be verified ({reason}) against {trust}"
        )
    alerts = ("ALERT_CERTIFICATE_REQUIRED", "ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE")
    if any(alert in text for alert in alerts):
        given = (
            f"CLICKHOUSE_CLIENT_CERT={settings.clickhouse_client_cert}"
            if settings.clickhouse_client_cert
            else "no client certificate (set CLICKHOUSE_CLIENT_CERT and CLICKHOUSE_CLIENT_KEY)"
        )
        return ClickHouseTLSError(
            f"the {where} refused the TLS connection with {given}: {_ssl_text(text)}"
        )
    return None


def _ssl_text(text: str) -> str:
    """The ``[SSL: NAME] reason`` part of an error text that quotes an ssl error."""
    found = _SSL_ERROR.search(text)
    return found.group(0).strip() if found else text


def ensure_table(client: Client, table: TableSpec, database: str) -> TableReady:
    """Create ``database`` and ``table`` when missing, else bring the table to its definition:
    add the new columns that can be added, stop on a changed type or a missing column that
    cannot (see :mod:`jupiter_common.evolution`), warn about columns the definition lacks.

    Idempotent: a second run changes nothing. Every change is logged. Raises
    :class:`~jupiter_common.errors.TableSchemaError` (a :class:`ColumnTypeChangedError` for a
    changed type) before it changes anything."""
    qualified = table.qualified(database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
    created = not _table_exists(client, table, database)
    client.command(table.ddl(database))
    evolution = plan(table, qualified, _column_types(client, table, database))
    for column in evolution.add:
        client.command(table.add_column_ddl(database, column.name))
        log.info("added column %s %s to %s", column.name, column.type, qualified)
    for name in evolution.unknown:
        log.warning(
            "column %s of %s is not in Jupiter's definition of the table: left alone (new rows"
            " get its default); drop it by hand if nothing needs it",
            name,
            qualified,
        )
    if evolution.add:
        # What ClickHouse made of the ALTERs must now match exactly.
        plan(table, qualified, _column_types(client, table, database))
    log.info("table %s %s", qualified, "created" if created else "ready")
    return TableReady(
        qualified,
        created=created,
        added=tuple(c.name for c in evolution.add),
        unknown=evolution.unknown,
    )


@dataclass(frozen=True, slots=True)
class TableReady:
    """What :func:`ensure_table` did to a table."""

    table: str
    created: bool
    added: tuple[str, ...]
    """Columns added by ``ALTER TABLE ... ADD COLUMN``."""
    unknown: tuple[str, ...]
    """Columns of the table that Jupiter's definition lacks (left alone)."""


def _table_exists(client: Client, table: TableSpec, database: str) -> bool:
    result = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table.name},
    )
    return bool(result.result_rows[0][0])


def _column_types(client: Client, table: TableSpec, database: str) -> dict[str, str]:
    result = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}"
        " ORDER BY position",
        parameters={"db": database, "t": table.name},
    )
    return {str(name): str(kind) for name, kind in result.result_rows}


_STORE_HELD_ELSEWHERE: Final = ("Cannot lock file", "Error initializing EmbeddedServer")


def explain_store_error(exc: Exception) -> str:
    """What to tell a person about ``exc`` from opening or querying a store: chDB lets one
    process open an embedded store, and says so as "Cannot lock file .../status" or, opening
    it through clickhouse-connect, as "Error initializing EmbeddedServer"."""
    text = str(exc)
    if any(sign in text for sign in _STORE_HELD_ELSEWHERE):
        return "the embedded store is open in another process (a running job?); try again after it"
    return text
