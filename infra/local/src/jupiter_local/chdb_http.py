"""A local ClickHouse HTTP endpoint served by the real engine, chDB.

Why this exists: Jupiter's jobs write to ClickHouse over HTTP with clickhouse-connect, and no
ClickHouse server can be installed on the development machine. chDB is the real engine, but a
chDB data directory can be opened by one process only ("Cannot lock file .../status"), while
several Flink worker processes must write to the same store at once. This script owns the chDB
directory in one process and answers ClickHouse's HTTP interface for exactly the requests
clickhouse-connect makes, so every worker runs its production HTTP code path (compression,
Native inserts, settings such as ``insert_deduplication_token``, error codes) against the real
engine.

It is a local/test tool only: it is never shipped in an image and is never a default; nothing
starts it unless a developer or a test does. It has no authentication (``user``/``password``
are accepted and ignored), so keep it on a loopback address.

What it implements, following ClickHouse's own HTTP handler:

* ``GET``/``HEAD /ping`` -> ``Ok.``; ``GET /`` without a query -> ``Ok.``.
* Any other path: the SQL is the ``query`` URL parameter, a newline, then the (decompressed)
  request body, as ClickHouse concatenates them. ``multipart/form-data`` bodies (which
  clickhouse-connect uses for large bound parameters) supply ``query`` and ``param_*`` fields.
* ``INSERT ... FORMAT <fmt> <data>`` and ``INSERT ... VALUES <data>``: the statement head is
  executed by chDB's streaming insert and the inline data is fed to it in the declared format.
  Other statements run as they are; the result is returned in the query's ``FORMAT`` or the
  ``default_format`` parameter (TabSeparated by default).
* Request ``Content-Encoding``: zstd, lz4 (frame, also concatenated frames), gzip, deflate, xz,
  bz2, and br when the ``brotli`` module is installed. Response compression is negotiated from
  ``Accept-Encoding`` in ClickHouse's preference order when ``enable_http_compression`` is on.
* ``database``, ``default_format``, ``session_id``/``session_timeout``/``session_check``,
  ``query_id``, ``param_*`` bound parameters, and settings as URL parameters: every engine
  setting (a name in the engine's ``system.settings``) is applied to the query; unknown names
  and HTTP-transport settings are ignored. Settings are applied with ``SET`` on the request's
  own chDB session (values bound as query parameters), never spliced into the client's SQL.
* Errors: ClickHouse's status codes, the ``Code: N. DB::Exception: ... (NAME) (version ...)``
  body, and the ``X-ClickHouse-Exception-Code`` header, which clickhouse-connect reads.
* ``X-ClickHouse-Summary``/``-Query-Id``/``-Format``/``-Timezone``/``-Server-Display-Name``.

One chDB engine serves the whole process. Every engine call is serialized by one lock, so a
long query delays the others. A request without ``session_id`` runs on a fresh chDB session
that is closed afterwards; a ``session_id`` keeps its own chDB session (``USE``, ``SET``,
temporary tables) until it has been idle for ``session_timeout`` seconds (default 60).
Results are buffered, not streamed. Not supported (they fail with NOT_IMPLEMENTED): ClickHouse's
internal ``compress``/``decompress`` block compression, external data tables, snappy.

TLS (HTTPS, as a ClickHouse server's ``https_port``): ``--tls-cert``/``--tls-key`` (PEM files)
serve HTTPS instead of HTTP; ``--tls-client-ca`` (a PEM CA bundle) also requires every client to
present a certificate signed by that CA (mutual TLS, ClickHouse's ``verificationMode`` strict).
The handshake runs in the connection's own thread; a failed one is logged and the connection
dropped.

Run: ``python -m jupiter_local.chdb_http --path .jupiter/clickhouse-http --port 8123``; it prints
one ``ready ...`` line when it is listening, and SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import gzip
import importlib
import json
import logging
import lzma
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Final, Protocol, cast
from urllib.parse import parse_qsl, urlsplit

import chdb

log = logging.getLogger("chdb_http")

DEFAULT_SESSION_TIMEOUT: Final = 60
MAX_SESSION_TIMEOUT: Final = 3600
_INSERT_APPEND_CHUNK: Final = 8 * 1024 * 1024
_MAX_CHUNK_LINE: Final = 65536

# URL parameters ClickHouse's HTTP handler consumes itself; everything else is a setting.
_TRANSPORT_PARAMS: Final = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "user",
        "password",
        "quota_key",
        "role",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "stacktrace",
        "close_session",
    }
)
# Settings that only shape the HTTP exchange. This server handles (or has no use for) them, and
# applying them to the engine session would only cost engine calls.
_HTTP_ONLY_SETTINGS: Final = frozenset(
    {
        "enable_http_compression",
        "send_progress_in_http_headers",
        "cancel_http_readonly_queries_on_client_close",
        "add_http_cors_header",
        "http_headers_progress_interval_ms",
        "http_zlib_compression_level",
        "http_native_compression_disable_checksumming_on_decompress",
        "http_response_buffer_size",
        "http_wait_end_of_query",
        "http_write_exception_in_output_format",
        "http_response_headers",
    }
)
# Statements whose first keyword means they produce a result set (X-ClickHouse-Format).
_RESULT_KEYWORDS: Final = frozenset(
    {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "CHECK", "FROM", "("}
)
# chdb's Python wrapper turns these "formats" into Python objects instead of bytes.
_PYTHON_ONLY_FORMATS: Final = frozenset({"dataframe", "arrowtable", "datastore"})

# ClickHouse's exceptionCodeToHTTPStatus, keyed by the error name the engine puts in its message.
_STATUS_BY_ERROR: Final[Mapping[str, int]] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        (
            "UNKNOWN_USER",
            "WRONG_PASSWORD",
            "AUTHENTICATION_FAILED",
            "SET_NON_GRANTED_ROLE",
            "ACCESS_DENIED",
        ),
        403,
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "RESOURCE_NOT_FOUND",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
}

_CODE_RE: Final = re.compile(r"Code:\s*(\d+)")
_NAME_RE: Final = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")


# --------------------------------------------------------------------------------------------
# Errors


class ClickHouseError(Exception):
    """An error reported to the client the way ClickHouse reports it."""

    def __init__(self, code: int, name: str, text: str) -> None:
        self.code = code
        self.name = name
        self.message = f"Code: {code}. DB::Exception: {text}. ({name})"
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return _STATUS_BY_ERROR.get(self.name, 500)

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        """Wrap an engine exception, keeping its ``Code: N. DB::Exception: ...`` text."""
        text = str(exc).strip()
        start = text.find("Code:")
        code_match = _CODE_RE.search(text)
        if start < 0 or code_match is None:
            return cls(1001, "STD_EXCEPTION", text or type(exc).__name__)
        name_match = _NAME_RE.search(text)
        error = cls(int(code_match.group(1)), name_match.group(1) if name_match else "", "")
        error.message = text[start:]
        error.args = (error.message,)
        return error


def _bad_arguments(text: str) -> ClickHouseError:
    return ClickHouseError(36, "BAD_ARGUMENTS", text)


def _not_implemented(text: str) -> ClickHouseError:
    return ClickHouseError(48, "NOT_IMPLEMENTED", text)


# --------------------------------------------------------------------------------------------
# Compression


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_lz4_frame: Any = _optional_module("lz4.frame")
_zstd: Any = _optional_module("backports.zstd") or _optional_module("compression.zstd")
_zstandard: Any = None if _zstd is not None else _optional_module("zstandard")
_brotli: Any = _optional_module("brotli")


def _decode_frames(data: bytes, new_decoder: Callable[[], Any], codec: str) -> bytes:
    """Decode concatenated frames (clickhouse-connect compresses each block as its own frame)."""
    out = bytearray()
    rest = data
    while rest:
        decoder = new_decoder()
        out += decoder.decompress(rest)
        if not decoder.eof:
            raise ValueError(f"truncated {codec} frame")
        rest = bytes(decoder.unused_data or b"")
    return bytes(out)


def _lz4_decompress(data: bytes) -> bytes:
    return _decode_frames(data, _lz4_frame.LZ4FrameDecompressor, "LZ4")


def _zstd_decompress(data: bytes) -> bytes:
    if _zstd is not None:
        return bytes(_zstd.decompress(data))  # decodes concatenated frames
    return _decode_frames(data, lambda: _zstandard.ZstdDecompressor().decompressobj(), "zstd")


def _zstd_compress(data: bytes) -> bytes:
    if _zstd is not None:
        return bytes(_zstd.compress(data))
    return bytes(_zstandard.ZstdCompressor().compress(data))


_Codec = Callable[[bytes], bytes]


def _request_decoders() -> dict[str, _Codec]:
    decoders: dict[str, _Codec] = {
        "gzip": gzip.decompress,
        "deflate": lambda data: zlib.decompress(data, 47),  # zlib or gzip framing
        "xz": lzma.decompress,
        "bz2": bz2.decompress,
    }
    if _zstd is not None or _zstandard is not None:
        decoders["zstd"] = _zstd_decompress
    if _lz4_frame is not None:
        decoders["lz4"] = _lz4_decompress
    if _brotli is not None:
        decoders["br"] = lambda data: bytes(_brotli.decompress(data))
    return decoders


def _response_encoders(zlib_level: int) -> dict[str, _Codec]:
    encoders: dict[str, _Codec] = {
        "gzip": lambda data: gzip.compress(data, zlib_level),
        "deflate": lambda data: zlib.compress(data, zlib_level),
        "xz": lambda data: lzma.compress(data, lzma.FORMAT_XZ),
        "bz2": bz2.compress,
    }
    if _zstd is not None or _zstandard is not None:
        encoders["zstd"] = _zstd_compress
    if _lz4_frame is not None:
        encoders["lz4"] = lambda data: bytes(_lz4_frame.compress(data))
    if _brotli is not None:
        encoders["br"] = lambda data: bytes(_brotli.compress(data))
    return encoders


_REQUEST_DECODERS: Final = _request_decoders()
# ClickHouse's chooseHTTPCompressionMethod order (snappy is not available here).
_RESPONSE_PREFERENCE: Final = ("zstd", "br", "lz4", "gzip", "deflate", "xz", "bz2")


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo a request ``Content-Encoding`` (possibly a comma-separated chain)."""
    if not content_encoding:
        return body
    names = [n.strip().lower() for n in content_encoding.split(",") if n.strip()]
    for name in reversed(names):
        if name in ("identity", "none"):
            continue
        decoder = _REQUEST_DECODERS.get(name)
        if decoder is None:
            raise _not_implemented(
                f"Unknown or unavailable compression method '{name}'. Available here: "
                + ", ".join(sorted(_REQUEST_DECODERS))
            )
        try:
            body = decoder(body)
        except Exception as exc:
            raise ClickHouseError(
                271, "CANNOT_DECOMPRESS", f"Cannot decompress the {name} request body: {exc}"
            ) from exc
    return body


def choose_response_encoding(accept_encoding: str) -> str | None:
    """The response encoding ClickHouse would choose for this ``Accept-Encoding``."""
    accepted: dict[str, float] = {}
    for item in accept_encoding.split(","):
        token, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if token:
            accepted[token.strip().lower()] = quality
    available = _response_encoders(1)
    for name in _RESPONSE_PREFERENCE:
        quality = accepted.get(name, accepted.get("*", 0.0))
        if quality > 0 and name in available:
            return name
    return None


# --------------------------------------------------------------------------------------------
# Just enough SQL lexing to find where an INSERT's inline data starts


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "quoted", "string", "number", "punct"
    start: int
    end: int
    text: str  # upper-cased for words, the character for punctuation, "" otherwise


_WORD_START: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_WORD_CHARS: Final = _WORD_START | frozenset(b"0123456789$")
_SPACE: Final = frozenset(b" \t\n\r\f\v")
_HEREDOC_RE: Final = re.compile(rb"\$([A-Za-z0-9_]*)\$")


def _skip_quoted(sql: bytes, pos: int, quote: int) -> int:
    """Index just past the literal or quoted identifier that starts at ``pos``."""
    i = pos + 1
    n = len(sql)
    while i < n:
        char = sql[i]
        if char == 0x5C:  # backslash escape
            i += 2
            continue
        if char == quote:
            if i + 1 < n and sql[i + 1] == quote:  # doubled quote
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _tokens(sql: bytes) -> Iterator[_Token]:
    """ClickHouse tokens, skipping whitespace and comments. Never raises on odd input."""
    i = 0
    n = len(sql)
    while i < n:
        char = sql[i]
        if char in _SPACE:
            i += 1
        elif sql.startswith(b"--", i) or sql.startswith(b"#!", i) or sql.startswith(b"# ", i):
            end = sql.find(b"\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith(b"/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith(b"/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith(b"*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif char == 0x27:  # '
            end = _skip_quoted(sql, i, char)
            yield _Token("string", i, end, "")
            i = end
        elif char in (0x60, 0x22):  # ` "
            end = _skip_quoted(sql, i, char)
            yield _Token("quoted", i, end, "")
            i = end
        elif char == 0x24 and (heredoc := _HEREDOC_RE.match(sql, i)) is not None:
            close = sql.find(heredoc.group(0), heredoc.end())
            end = n if close < 0 else close + len(heredoc.group(0))
            yield _Token("string", i, end, "")
            i = end
        elif char in _WORD_START or char >= 0x80:
            end = i + 1
            while end < n and (sql[end] in _WORD_CHARS or sql[end] >= 0x80):
                end += 1
            yield _Token("word", i, end, sql[i:end].decode("utf-8", "replace").upper())
            i = end
        elif 0x30 <= char <= 0x39:
            end = i + 1
            while end < n and (sql[end] in _WORD_CHARS or sql[end] == 0x2E):
                end += 1
            yield _Token("number", i, end, "")
            i = end
        else:
            yield _Token("punct", i, i + 1, chr(char))
            i += 1


@dataclass(frozen=True)
class Statement:
    """What the server needs to know about one request's SQL."""

    keyword: str  # first keyword upper-cased, "(" for a parenthesised query, "" if neither
    empty: bool = False
    insert_head: bytes | None = None  # "INSERT INTO t (cols) " when there is inline data
    insert_format: str | None = None
    data_offset: int = 0  # where the inline data starts in the request text
    output_format: str | None = None  # the statement's own FORMAT clause
    set_names: tuple[str, ...] = ()  # settings a SET statement assigns
    multi_statement: bool = False


# A FORMAT or VALUES word right after these is a table name, not the clause.
_NAME_POSITION: Final = frozenset({"INTO", "TABLE", "FUNCTION", "."})


def analyse(sql: bytes) -> Statement:
    """Classify the SQL; for an INSERT with inline data, find the head, format and data."""
    tokens = _tokens(sql)
    first = next(tokens, None)
    if first is None:
        return Statement(keyword="", empty=True)
    keyword = first.text if first.kind == "word" or first.text == "(" else ""
    inline_data = keyword == "INSERT"  # until a SELECT / WITH / FROM INFILE shows otherwise
    depth = 0
    previous = first
    output_format: str | None = None
    set_names: list[str] = []
    ended = False
    for token in tokens:
        if ended:
            return Statement(keyword, multi_statement=True)
        if token.kind == "punct":
            if token.text in "([":
                depth += 1
            elif token.text in ")]":
                depth = max(0, depth - 1)
            elif token.text == ";" and depth == 0:
                ended = True
            elif (
                token.text == "="
                and depth == 0
                and keyword == "SET"
                and previous.kind in ("word", "quoted")
            ):
                name = sql[previous.start : previous.end].decode("utf-8", "replace")
                set_names.append(name.strip('`"'))
        elif token.kind == "word" and depth == 0 and previous.text not in _NAME_POSITION:
            if inline_data and token.text in ("SELECT", "WITH", "FROM"):
                inline_data = False
            elif inline_data and token.text == "VALUES":
                return Statement(keyword, False, sql[: token.start], "Values", token.end)
            elif token.text == "FORMAT":
                name_token = next(tokens, None)
                if name_token is None or name_token.kind != "word":
                    break
                fmt = sql[name_token.start : name_token.end].decode()
                if inline_data:
                    data_offset = _data_start(sql, name_token.end)
                    return Statement(keyword, False, sql[: token.start], fmt, data_offset)
                output_format = fmt
                previous = name_token
                continue
        previous = token
    return Statement(keyword, output_format=output_format, set_names=tuple(set_names))


def _data_start(sql: bytes, pos: int) -> int:
    """ClickHouse's rule: data starts after the first newline, or after the blanks."""
    n = len(sql)
    while pos < n and sql[pos] in b" \t\f":
        pos += 1
    if pos < n and sql[pos] == 0x0D:
        pos += 1
    if pos < n and sql[pos] == 0x0A:
        pos += 1
    return pos


# --------------------------------------------------------------------------------------------
# The engine: one chDB engine, one lock, a chDB session per request or per session_id


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
    session_check: bool = False
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
            if request.session_check:
                raise ClickHouseError(
                    372, "SESSION_NOT_FOUND", f"Session {request.session_id} not found"
                )
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


# --------------------------------------------------------------------------------------------
# HTTP


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def _content_type(fmt: str | None) -> str:
    name = (fmt or "").lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8"
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    if name.startswith(("native", "rowbinary", "parquet", "arrow", "orc", "avro", "protobuf")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def _multipart(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a ``multipart/form-data`` body; file parts are external data."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise _bad_arguments("multipart/form-data without a boundary")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, str] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        headers, _, content = part.partition(b"\r\n\r\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = ""
        for line in headers.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value
        name = re.search(r'\bname="([^"]*)"', disposition)
        if name is None:
            continue
        if re.search(r"\bfilename=", disposition):
            raise _not_implemented("External data (multipart file parts) is not supported")
        fields[name.group(1)] = content.decode("utf-8")
    return fields


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        engine: ChdbEngine,
        verbose: bool,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.tls = tls is not None
        if tls is not None:
            # Accepted connections are TLS sockets whose handshake _Handler.handle runs, in the
            # connection's thread: a slow or failing client never holds up accept().
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.engine = engine
        self.verbose = verbose
        self.display_name = socket.gethostname()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock handler threads parked on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _BadRequestError(Exception):
    pass


def _drain(conn: socket.socket, timeout: float = 2.0) -> None:
    """Half-close a connection whose TLS handshake failed and read what the client still sends
    (its request, below TLS) until it closes: closing with unread data would reset the
    connection, and the client would lose the alert that says why it was refused."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(conn, socket.SHUT_WR)
        socket.socket.settimeout(conn, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and socket.socket.recv(conn, 65536):
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle(read_only=True)

    def do_HEAD(self) -> None:
        self._handle(read_only=True)

    def do_POST(self) -> None:
        self._handle(read_only=False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                # A bare EOF is a client that closed without a word (a port probe): not news.
                level = logging.INFO if isinstance(exc, ssl.SSLEOFError) else logging.WARNING
                log.log(level, "TLS handshake with %s:%s failed: %s", *self.client_address[:2], exc)
                self.close_connection = True
                _drain(self.connection)
                return
        super().handle()

    # -- request handling --------------------------------------------------------------------

    def _handle(self, read_only: bool) -> None:
        try:
            body = self._read_body()
        except (_BadRequestError, ValueError, OSError) as exc:
            self.close_connection = True
            self._send(_Reply(400, f"Bad request body: {exc}\n".encode(), {}))
            return
        url = urlsplit(self.path)
        query_id = ""
        try:
            if url.path.rstrip("/") == "/ping":
                self._send(_Reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"}))
                return
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            query_id = params.get("query_id") or str(uuid.uuid4())
            self._send(self._run(params, body, query_id, read_only))
        except ClickHouseError as exc:
            self._send(self._error(exc, query_id))
        except Exception as exc:  # never leave a client without an answer
            log.exception("unexpected error")
            self._send(self._error(ClickHouseError(1001, "STD_EXCEPTION", repr(exc)), query_id))

    def _run(self, params: dict[str, str], body: bytes, query_id: str, read_only: bool) -> _Reply:
        content_type = self.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            params.update(_multipart(body, content_type))
            body = b""
        else:
            body = decode_body(body, self.headers.get("Content-Encoding"))
        for name in ("compress", "decompress"):
            if _truthy(params.get(name)):
                raise _not_implemented(f"The '{name}' (ClickHouse block compression) parameter")
        query = params.get("query", "").encode()
        if not query and not body and read_only:
            return _Reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
        sql = query + b"\n" + body if query else body
        request = self._engine_request(params, sql, read_only)
        reply = self.server.engine.execute(request)
        headers = self._common_headers(query_id)
        headers["X-ClickHouse-Timezone"] = request.settings.get("session_timezone") or (
            self.server.engine.timezone
        )
        headers["X-ClickHouse-Summary"] = json.dumps(reply.summary, separators=(",", ":"))
        headers["Content-Type"] = _content_type(reply.output_format)
        if reply.output_format is not None:
            headers["X-ClickHouse-Format"] = reply.output_format
        payload = reply.body
        encoding = self._response_encoding(params)
        if encoding is not None and payload:
            level = int(params.get("http_zlib_compression_level") or "3")
            payload = _response_encoders(level)[encoding](payload)
            headers["Content-Encoding"] = encoding
        return _Reply(200, payload, headers)

    def _engine_request(self, params: dict[str, str], sql: bytes, read_only: bool) -> EngineRequest:
        timeout_text = params.get("session_timeout") or str(DEFAULT_SESSION_TIMEOUT)
        try:
            timeout = int(timeout_text)
        except ValueError:
            timeout = -1
        if not 0 <= timeout <= MAX_SESSION_TIMEOUT:
            raise ClickHouseError(
                374,
                "INVALID_SESSION_TIMEOUT",
                f"Invalid session timeout: '{timeout_text}' (0..{MAX_SESSION_TIMEOUT} seconds)",
            )
        settings = {
            key: value
            for key, value in params.items()
            if key not in _TRANSPORT_PARAMS
            and key not in _HTTP_ONLY_SETTINGS
            and not key.startswith("param_")
        }
        return EngineRequest(
            sql=sql,
            database=params.get("database") or self.headers.get("X-ClickHouse-Database") or None,
            default_format=(
                params.get("default_format")
                or self.headers.get("X-ClickHouse-Format")
                or "TabSeparated"
            ),
            settings=settings,
            params={k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")},
            session_id=params.get("session_id") or None,
            session_timeout=timeout,
            session_check=_truthy(params.get("session_check")),
            readonly=read_only,
        )

    def _response_encoding(self, params: Mapping[str, str]) -> str | None:
        accept = self.headers.get("Accept-Encoding")
        if not accept:
            return None
        enabled = params.get("enable_http_compression")
        if enabled is None:
            enabled = self.server.engine.defaults.get("enable_http_compression", "0")
        return choose_response_encoding(accept) if _truthy(enabled) else None

    def _common_headers(self, query_id: str) -> dict[str, str]:
        headers = {"X-ClickHouse-Server-Display-Name": self.server.display_name}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        return headers

    def _error(self, exc: ClickHouseError, query_id: str) -> _Reply:
        engine = self.server.engine
        text = f"{exc.message} (version {engine.version} (chDB))\n"
        headers = self._common_headers(query_id)
        headers["X-ClickHouse-Exception-Code"] = str(exc.code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        return _Reply(exc.status, text.encode(), headers)

    # -- wire --------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        size = int(length)
        body = self.rfile.read(size)
        if len(body) != size:
            raise _BadRequestError("the body is shorter than its Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            if not line.endswith(b"\n"):
                raise _BadRequestError("malformed chunk header")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(_MAX_CHUNK_LINE).strip():
                raise _BadRequestError("malformed chunk")
            body += chunk

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)


# --------------------------------------------------------------------------------------------
# Running it


class ServerHandle:
    """A running server: the listening port, and ``stop()`` to shut it and chDB down."""

    def __init__(self, server: _HTTPServer, engine: ChdbEngine) -> None:
        self._server = server
        self.engine = engine
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, name="chdb-http", kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._server.tls else 'http'}://{host}:{self.port}"

    def stop(self) -> None:
        """Stop listening, drop idle connections, finish the running query, close chDB."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        self.engine.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tls_context(
    cert: str | Path, key: str | Path, client_ca: str | Path | None = None
) -> ssl.SSLContext:
    """A server-side TLS context: this certificate and key; with ``client_ca``, clients must
    present a certificate that CA signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def serve(
    path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8123,
    *,
    verbose: bool = False,
    tls: ssl.SSLContext | None = None,
) -> ServerHandle:
    """Open the chDB directory and serve it over HTTP (HTTPS with ``tls``, see
    :func:`tls_context`) from a background thread.

    ``port=0`` picks a free port (see ``ServerHandle.port``). Only one chDB directory can be
    open per process, and only by one process at a time.
    """
    engine = ChdbEngine(Path(path))
    try:
        server = _HTTPServer((host, port), engine, verbose, tls)
    except BaseException:
        engine.close()
        raise
    return ServerHandle(server, engine)


def _owns_pid_file(pid_file: Path) -> bool:
    try:
        return pid_file.read_text().strip() == str(os.getpid())
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve a chDB directory over ClickHouse's HTTP interface (local/test tool)."
    )
    parser.add_argument("--path", default=".jupiter/clickhouse-http", help="chDB data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument("--pid-file", type=Path, help="write the process id here while running")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca", type=Path, help="require client certificates signed by this PEM CA"
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        tls = None
        if args.tls_cert is not None:
            tls = tls_context(args.tls_cert, args.tls_key, args.tls_client_ca)
        handle = serve(args.path, args.host, args.port, verbose=args.verbose, tls=tls)
    except (ClickHouseError, OSError) as exc:
        print(f"chdb_http: cannot start: {exc}", file=sys.stderr)
        return 1
    pid_file: Path | None = args.pid_file
    try:
        if pid_file is not None:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(f"{os.getpid()}\n")
        print(
            f"ready {handle.url} path={handle.engine.path} chdb={handle.engine.version} "
            f"pid={os.getpid()}",
            flush=True,
        )
        while not stop.wait(timeout=3600):
            pass
    finally:
        handle.stop()
        if pid_file is not None and _owns_pid_file(pid_file):
            pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
