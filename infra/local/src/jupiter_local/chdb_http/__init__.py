"""A local ClickHouse HTTP endpoint served by the real engine, chDB.

Why this exists: Jupiter's jobs write to ClickHouse over HTTP with clickhouse-connect, and a
chDB data directory can be opened by one process only ("Cannot lock file .../status"), while
several Flink worker processes must write to the same store at once. This package owns the chDB
directory in one process and answers ClickHouse's HTTP interface for the requests
clickhouse-connect makes, so every worker runs its production HTTP code path (compression,
Native inserts, settings such as ``insert_deduplication_token``, error codes) against the real
engine. A local/test tool only: never shipped in an image, never a default, no authentication
(``user``/``password`` are accepted and ignored), so keep it on a loopback address.

What clickhouse-connect sends, logged from the unit, TLS and e2e tests and the jobs' writers,
and so what is served: ``POST /`` with the SQL in the body (compressed with the client's
``compress``: lz4, zstd or gzip; chunked for inserts), settings and ``query_id``,
``session_id``, ``param_*``, ``database`` as URL parameters, a ``multipart/form-data`` body for
large bound parameters, ``GET /ping``; answers in the statement's own ``FORMAT``. A
``query`` URL parameter (raw inserts put the INSERT there) and ``GET /?query=...`` (read-only,
as in ClickHouse) also work, for curl and raw inserts.

Modules, one concern each: :mod:`.errors` (ClickHouse's error text, codes, statuses),
:mod:`.codecs` (body compression), :mod:`.statement` (SQL analysis: where an INSERT's data
starts), :mod:`.engine` (chDB, one lock, sessions, settings), :mod:`.server` (the HTTP
handler, TLS) and :mod:`.run` (:func:`serve`, the command line).

Run: ``python -m jupiter_local.chdb_http --path .jupiter/clickhouse-http --port 8123``; it prints
one ``ready ...`` line when it is listening, and SIGTERM/SIGINT stop it cleanly.
"""

from jupiter_local.chdb_http.errors import ClickHouseError
from jupiter_local.chdb_http.run import ServerHandle, main, serve, tls_context
from jupiter_local.chdb_http.statement import Statement, analyse

__all__ = [
    "ClickHouseError",
    "ServerHandle",
    "Statement",
    "analyse",
    "main",
    "serve",
    "tls_context",
]
