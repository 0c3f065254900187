"""ClickHouse's HTTP interface over :mod:`~jupiter_local.chdb_http.engine`: request parsing
(URL parameters, chunked and multipart bodies, compression), ClickHouse's response headers and
error replies, optional TLS, and :func:`serve` to run it in a background thread."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from jupiter_local.chdb_http.codecs import choose_response_encoding, decode_body, encode_body
from jupiter_local.chdb_http.engine import (
    DEFAULT_SESSION_TIMEOUT,
    MAX_SESSION_TIMEOUT,
    ChdbEngine,
    EngineRequest,
)
from jupiter_local.chdb_http.errors import ClickHouseError, bad_arguments, not_implemented

log = logging.getLogger("chdb_http")

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
        raise bad_arguments("multipart/form-data without a boundary")
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
            raise not_implemented("External data (multipart file parts) is not supported")
        fields[name.group(1)] = content.decode("utf-8")
    return fields


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class HTTPServer(ThreadingHTTPServer):
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
    server: HTTPServer

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
                raise not_implemented(f"The '{name}' (ClickHouse block compression) parameter")
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
            payload = encode_body(payload, encoding, level)
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
            database=params.get("database") or None,
            default_format=params.get("default_format") or "TabSeparated",
            settings=settings,
            params={k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")},
            session_id=params.get("session_id") or None,
            session_timeout=timeout,
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
