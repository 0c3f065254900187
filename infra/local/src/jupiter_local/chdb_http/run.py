"""Running the endpoint: :func:`serve` in a background thread (tests, the local cluster) and
``python -m jupiter_local.chdb_http`` (:func:`main`), which serves a chDB directory until
SIGTERM/SIGINT and prints one ``ready ...`` line when it listens."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import threading
from pathlib import Path
from types import FrameType

from jupiter_local.chdb_http.engine import ChdbEngine
from jupiter_local.chdb_http.errors import ClickHouseError
from jupiter_local.chdb_http.server import HTTPServer


class ServerHandle:
    """A running server: the listening port, and ``stop()`` to shut it and chDB down."""

    def __init__(self, server: HTTPServer, engine: ChdbEngine) -> None:
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
        server = HTTPServer((host, port), engine, verbose, tls)
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
        prog="python -m jupiter_local.chdb_http",
        description="Serve a chDB directory over ClickHouse's HTTP interface (local/test tool).",
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
