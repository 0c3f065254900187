"""The engine: one chDB engine per process, every call serialized by one lock, a chDB session
per request or per ``session_id``.

A request without ``session_id`` runs on a fresh chDB session that is closed afterwards; a
``session_id`` keeps its own chDB session (``USE``, ``SET``, temporary tables) until it has been
idle for ``session_timeout`` seconds (default 60). Settings are applied with ``SET`` on the
request's own session (values bound as query parameters, names taken from the engine's
``system.settings``), never spliced into the client's SQL; on a kept session they are undone
after the request."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, cast

import chdb

from jupiter_local.chdb_http.errors import ClickHouseError
from jupiter_local.chdb_http.statement import Statement, analyse

log = logging.getLogger("chdb_http")

DEFAULT_SESSION_TIMEOUT: Final = 60
MAX_SESSION_TIMEOUT: Final = 3600
_INSERT_APPEND_CHUNK: Final = 8 * 1024 * 1024

# Statements whose first keyword means they produce a result set (X-ClickHouse-Format).
_RESULT_KEYWORDS: Final = frozenset(
    {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "CHECK", "FROM", "("}
)
# chdb's Python wrapper turns these "formats" into Python objects instead of bytes.
_PYTHON_ONLY_FORMATS: Final = frozenset({"dataframe", "arrowtable", "datastore"})


class _QueryResult(Protocol):
    def bytes(self) -> bytes: ...
    def rows_read(self) -> int: ...
    def bytes_read(self) -> int: ...
    def storage_rows_read(self) -> int: ...
    def storage_bytes_read(self) -> int: ...
    def rows_written(self) -> int: ...
    def bytes_written(self) -> int: ...
    def elapsed(self) -> float: ...


class _InsertResult(Protocol):
    rows_written: int
    bytes_written: int
    elapsed: float


class _Inserter(Protocol):
    def append(self, data: bytes | memoryview) -> None: ...
    def finish(self) -> _InsertResult: ...
    def cancel(self) -> None: ...


class _Connection(Protocol):
    """The part of ``chdb.Connection`` used here. ``query`` takes bytes as well as str."""

    def query(
        self, query: str | bytes, format: str = ..., params: dict[str, str] | None = ...
    ) -> Any: ...
    def send_insert(self, query: str, format: str = ...) -> _Inserter: ...
    def close(self) -> None: ...


_chdb_connect: Callable[[str], Any] = chdb.connect


def _connect(path: str) -> _Connection:
    try:
        return cast(_Connection, _chdb_connect(path))
    except Exception as exc:
        raise ClickHouseError.from_engine(exc) from exc


@dataclass
class EngineRequest:
    """One request, already decoded from HTTP."""

    sql: bytes
    database: str | None = None
    default_format: str = "TabSeparated"
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    session_id: str | None = None
    session_timeout: int = DEFAULT_SESSION_TIMEOUT
    readonly: bool = False


@dataclass
class EngineReply:
    body: bytes
    output_format: str | None  # set when the statement produced a result set
    summary: dict[str, str]


@dataclass
class _Session:
    conn: _Connection
    timeout: int
    last_used: float


@dataclass
class _Snapshot:
    database: str | None
    settings: dict[str, tuple[str, bool]]  # name -> (value, changed)


class ChdbEngine:
    """The chDB engine of this process, with every call serialized by one lock."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path.resolve()
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._closed = False
        self._warned: set[str] = set()
        # Kept open for the server's lifetime: the engine shuts down with its last session.
        self._anchor = _connect(str(self.path))
        try:
            about = self._rows(self._anchor, "SELECT version() AS v, timezone() AS tz")
            self.version = str(about[0]["v"])
            self.timezone = str(about[0]["tz"])
            rows = self._rows(self._anchor, "SELECT name, value FROM system.settings")
            # Setting names come from the engine, so only these strings are ever put into SET.
            self._setting_names: dict[str, str] = {str(r["name"]): str(r["name"]) for r in rows}
            self.defaults: dict[str, str] = {str(r["name"]): str(r["value"]) for r in rows}
        except BaseException:
            self._anchor.close()
            raise

    # -- public ------------------------------------------------------------------------------

    def execute(self, request: EngineRequest) -> EngineReply:
        with self._lock:
            if self._closed:
                raise ClickHouseError(210, "NETWORK_ERROR", "The server is shutting down")
            now = time.monotonic()
            self._expire_sessions(now)
            session = self._session(request, now)
            conn = session.conn if session is not None else _connect(str(self.path))
            try:
                return self._execute(conn, request, stateful=session is not None)
            finally:
                if session is not None:
                    session.last_used = time.monotonic()
                else:
                    conn.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for session in self._sessions.values():
                session.conn.close()
            self._sessions.clear()
            self._anchor.close()

    # -- sessions ----------------------------------------------------------------------------

    def _session(self, request: EngineRequest, now: float) -> _Session | None:
        if not request.session_id:
            return None
        session = self._sessions.get(request.session_id)
        if session is None:
            session = _Session(_connect(str(self.path)), request.session_timeout, now)
            self._sessions[request.session_id] = session
        session.timeout = request.session_timeout
        session.last_used = now
        return session

    def _expire_sessions(self, now: float) -> None:
        for key, session in list(self._sessions.items()):
            if now - session.last_used > session.timeout:
                del self._sessions[key]
                session.conn.close()

    def _drop_session(self, conn: _Connection) -> None:
        for key, session in list(self._sessions.items()):
            if session.conn is conn:
                del self._sessions[key]
                conn.close()

    # -- execution ---------------------------------------------------------------------------

    def _execute(self, conn: _Connection, request: EngineRequest, stateful: bool) -> EngineReply:
        statement = analyse(request.sql)
        if statement.empty:
            raise ClickHouseError(62, "SYNTAX_ERROR", "Empty query")
        if statement.multi_statement:
            raise ClickHouseError(62, "SYNTAX_ERROR", "Multi-statements are not allowed")
        changes = self._setting_changes(request, stateful)
        # A fresh session starts from the engine defaults; a kept one is read, then restored.
        snapshot = self._snapshot(conn, request, changes) if stateful else None
        current = snapshot.settings if snapshot is not None else {}
        applied: list[str] = []
        try:
            if request.database:
                self._query(conn, "USE {db:Identifier}", {"db": request.database})
            for name, value in changes.items():
                in_effect = current[name][0] if name in current else self.defaults.get(name)
                if value != in_effect:
                    applied.append(name)
                    self._query(conn, f"SET {name} = {{v:String}}", {"v": _escaped(value)})
            if statement.insert_head is not None:
                return self._insert(conn, request, statement)
            return self._select(conn, request, statement)
        finally:
            if snapshot is not None:
                self._restore(conn, snapshot, applied, statement)

    def _setting_changes(self, request: EngineRequest, stateful: bool) -> dict[str, str]:
        """The request's engine settings, keyed by the engine's own setting names."""
        changes: dict[str, str] = {}
        for key, value in request.settings.items():
            name = self._setting_names.get(key)
            if name is None:
                if key not in self._warned:
                    self._warned.add(key)
                    log.warning("ignoring unknown setting %r (not in system.settings)", key)
                continue
            changes[name] = value
        # ClickHouse runs GET requests with readonly=2. A kept session could not be restored
        # from that, so only fresh per-request sessions get it.
        if (
            request.readonly
            and not stateful
            and "readonly" not in changes
            and self.defaults.get("readonly", "0") == "0"
        ):
            changes["readonly"] = "2"
        return changes

    def _snapshot(
        self, conn: _Connection, request: EngineRequest, changes: Mapping[str, str]
    ) -> _Snapshot:
        database = None
        if request.database:
            database = str(self._rows(conn, "SELECT currentDatabase() AS db")[0]["db"])
        settings: dict[str, tuple[str, bool]] = {}
        if changes:
            rows = self._rows(
                conn,
                "SELECT name, value, changed FROM system.settings"
                " WHERE has({names:Array(String)}, name)",
                {"names": _array_literal(list(changes))},
            )
            settings = {str(r["name"]): (str(r["value"]), bool(r["changed"])) for r in rows}
        return _Snapshot(database, settings)

    def _restore(
        self, conn: _Connection, snapshot: _Snapshot, applied: list[str], statement: Statement
    ) -> None:
        """Undo the request's database and settings on a kept session, keeping what its own
        SQL changed (a USE, or the names a SET assigned)."""
        try:
            if snapshot.database is not None and statement.keyword != "USE":
                self._query(conn, "USE {db:Identifier}", {"db": snapshot.database})
            assigned = {name.lower() for name in statement.set_names}
            for name in applied:
                if name.lower() in assigned:
                    continue
                value, changed = snapshot.settings.get(name, ("", False))
                if changed:
                    self._query(conn, f"SET {name} = {{v:String}}", {"v": _escaped(value)})
                else:
                    self._query(conn, f"SET {name} = DEFAULT")
        except ClickHouseError:
            log.exception("cannot restore a session's state; closing that session")
            self._drop_session(conn)

    def _insert(
        self, conn: _Connection, request: EngineRequest, statement: Statement
    ) -> EngineReply:
        assert statement.insert_head is not None and statement.insert_format is not None
        try:
            head = statement.insert_head.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ClickHouseError(62, "SYNTAX_ERROR", "INSERT statement is not UTF-8") from exc
        data = memoryview(request.sql)[statement.data_offset :]
        try:
            inserter = conn.send_insert(head, statement.insert_format)
        except Exception as exc:
            raise ClickHouseError.from_engine(exc) from exc
        try:
            for offset in range(0, len(data), _INSERT_APPEND_CHUNK):
                inserter.append(data[offset : offset + _INSERT_APPEND_CHUNK])
            result = inserter.finish()
        except Exception as exc:
            try:
                inserter.cancel()
            except Exception:
                log.debug("cancelling a failed insert failed", exc_info=True)
            raise ClickHouseError.from_engine(exc) from exc
        written_rows = str(int(result.rows_written))
        written_bytes = str(int(result.bytes_written))
        summary = {
            "read_rows": "0",
            "read_bytes": "0",
            "written_rows": written_rows,
            "written_bytes": written_bytes,
            "total_rows_to_read": "0",
            "result_rows": written_rows,
            "result_bytes": written_bytes,
            "elapsed_ns": str(int(float(result.elapsed) * 1e9)),
        }
        return EngineReply(b"", None, summary)

    def _select(
        self, conn: _Connection, request: EngineRequest, statement: Statement
    ) -> EngineReply:
        fmt = request.default_format
        if fmt.lower() in _PYTHON_ONLY_FORMATS:
            raise ClickHouseError(73, "UNKNOWN_FORMAT", f"Unknown output format {fmt}")
        result = self._query(conn, request.sql, request.params, fmt)
        body = result.bytes() or b""
        produces = bool(body) or statement.keyword in _RESULT_KEYWORDS
        summary = {
            "read_rows": str(result.storage_rows_read()),
            "read_bytes": str(result.storage_bytes_read()),
            "written_rows": str(result.rows_written()),
            "written_bytes": str(result.bytes_written()),
            "total_rows_to_read": "0",
            "result_rows": str(result.rows_read()),
            "result_bytes": str(result.bytes_read()),
            "elapsed_ns": str(int(result.elapsed() * 1e9)),
        }
        return EngineReply(body, (statement.output_format or fmt) if produces else None, summary)

    # -- engine calls ------------------------------------------------------------------------

    @staticmethod
    def _query(
        conn: _Connection,
        sql: str | bytes,
        params: dict[str, str] | None = None,
        fmt: str = "TabSeparated",
    ) -> _QueryResult:
        try:
            result = conn.query(sql, fmt, params=params or {})
        except Exception as exc:
            raise ClickHouseError.from_engine(exc) from exc
        if not callable(getattr(result, "bytes", None)):
            raise ClickHouseError(73, "UNKNOWN_FORMAT", f"Format {fmt} does not produce bytes")
        return cast(_QueryResult, result)

    @classmethod
    def _rows(
        cls, conn: _Connection, sql: str, params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        body = cls._query(conn, sql, params, "JSONEachRow").bytes()
        return [json.loads(line) for line in body.splitlines() if line.strip()]


def _escaped(value: str) -> str:
    """A query parameter value (the engine parses those as escaped text) meaning ``value``."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _array_literal(values: list[str]) -> str:
    quoted = (v.replace("\\", "\\\\").replace("'", "\\'") for v in values)
    return "[" + ",".join(f"'{v}'" for v in quoted) + "]"
