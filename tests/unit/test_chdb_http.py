"""jupiter_local.chdb_http: the real engine (chDB) behind ClickHouse's HTTP interface.

Every test talks to the server the way the jobs do, with clickhouse-connect over HTTP, so what
is checked is the production client path: the connect handshake, DDL, Native inserts with each
request compression, server-side bound parameters, ``insert_deduplication_token``, error codes,
and several writers (threads, and another process) sharing the one chDB directory.
"""

from __future__ import annotations

import gzip
import importlib
import json
import selectors
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from backports import zstd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from tls_certs import Pki, make_pki

from jupiter_local import chdb_http

COMPRESSIONS: list[bool | str] = [False, "lz4", "zstd", "gzip"]
lz4_frame: Any = importlib.import_module("lz4.frame")  # no type information


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    """A server on a free port (the OS picks it: port 0) over a fresh chDB directory."""
    handle = chdb_http.serve(tmp_path / "chdb", "127.0.0.1", 0)
    try:
        yield handle
    finally:
        handle.stop()


def connect(server: Any, compress: bool | str = "lz4", **kwargs: Any) -> Client:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=server.port, compress=compress, **kwargs
    )


@pytest.fixture(params=COMPRESSIONS, ids=lambda c: f"compress={c}")
def client(request: pytest.FixtureRequest, server: Any) -> Iterator[Client]:
    c = connect(server, request.param)
    try:
        yield c
    finally:
        c.close()


def http(
    server: Any,
    params: dict[str, str],
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP exchange, for what clickhouse-connect does not expose (status, headers)."""
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/?{query}", data=body, headers=headers or {}
    )
    if method:
        request.method = method
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def count(client: Client, table: str) -> int:
    return int(str(client.command(f"SELECT count() FROM {table}")))


# --------------------------------------------------------------------------------------------


def test_ping(server: Any) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/ping", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"Ok.\n")
    head = urllib.request.Request(f"http://127.0.0.1:{server.port}/ping", method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as response:
        assert (response.status, response.read()) == (200, b"")
    c = connect(server)
    try:
        assert c.ping()
    finally:
        c.close()


def test_connect_handshake_reports_the_engine(client: Client, server: Any) -> None:
    assert client.server_version == server.engine.version
    assert str(client.server_version).startswith("26.")
    assert client.server_tz == UTC
    assert client.command("SELECT 1") == 1
    assert client.command("SELECT currentDatabase(), 'x'") == ["default", "x"]


def test_insert_columns_and_read_back_exactly(client: Client) -> None:
    client.command("CREATE DATABASE IF NOT EXISTS jupiter")
    client.command(
        """
        CREATE TABLE jupiter.samples (
            id UUID,
            ts DateTime64(3, 'UTC'),
            kind LowCardinality(String),
            value Float64,
            maybe Nullable(Float64),
            small Int32,
            big Int64
        ) ENGINE = MergeTree ORDER BY (kind, ts)
        """
    )
    start = datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC)
    n = 50
    columns: list[list[Any]] = [
        [uuid.uuid4() for _ in range(n)],
        [start + timedelta(milliseconds=7 * i) for i in range(n)],
        [("départ", "arrivée", "stop")[i % 3] for i in range(n)],
        [i / 3 - 5.25 for i in range(n)],
        [None if i % 4 == 0 else i * 1.5e300 for i in range(n)],
        [(-(2**31) + i) if i % 2 else (2**31 - 1 - i) for i in range(n)],
        [(-(2**63) + i) if i % 2 else (2**63 - 1 - i) for i in range(n)],
    ]
    names = ["id", "ts", "kind", "value", "maybe", "small", "big"]
    summary = client.insert(
        "samples", columns, column_names=names, database="jupiter", column_oriented=True
    )
    assert summary.written_rows == n
    # A LIMIT 0 query is a metadata probe: clickhouse-connect asks for FORMAT JSON instead.
    assert client.query("SELECT * FROM jupiter.samples LIMIT 0").column_names == tuple(names)

    result = client.query(
        "SELECT id, ts, kind, value, maybe, small, big FROM jupiter.samples ORDER BY big"
    )
    expected = sorted(zip(*columns, strict=True), key=lambda row: row[6])
    # clickhouse-connect returns DateTime64(3, 'UTC') as naive UTC by default.
    expected = [(*row[:1], row[1].replace(tzinfo=None), *row[2:]) for row in expected]
    assert result.result_rows == expected
    assert [t.name for t in result.column_types] == [
        "UUID",
        "DateTime64(3, 'UTC')",
        "LowCardinality(String)",
        "Float64",
        "Nullable(Float64)",
        "Int32",
        "Int64",
    ]


def test_large_insert_of_many_blocks(client: Client) -> None:
    """clickhouse-connect sends ~2 MiB blocks, each its own compression frame."""
    client.command("CREATE TABLE many (i Int64, s String) ENGINE = MergeTree ORDER BY i")
    n = 150_000
    ints = list(range(n))
    summary = client.insert(
        "many", [ints, [f"row-{i:08d}" for i in ints]], ["i", "s"], column_oriented=True
    )
    assert summary.written_rows == n
    assert client.query("SELECT count(), sum(i), uniqExact(s) FROM many").result_rows == [
        (n, n * (n - 1) // 2, n)
    ]


def test_server_side_parameters(client: Client) -> None:
    tricky = "tab\there, quote ' \" back\\slash, new\nline, ünïcødé"
    result = client.query(
        "SELECT {s:String} AS s, {n:Int64} + 1 AS n, {a:Array(String)} AS a,"
        " {t:DateTime64(3, 'UTC')} AS t",
        parameters={
            "s": tricky,
            "n": 41,
            "a": ["x", "y'z"],
            "t": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        },
    )
    naive_utc = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC).replace(tzinfo=None)
    assert result.result_rows == [(tricky, 42, ["x", "y'z"], naive_utc)]
    # A bound value over 4 KiB makes clickhouse-connect switch to a multipart/form-data body.
    big = "é" * 5000
    assert client.query("SELECT length({b:String})", parameters={"b": big}).result_rows == [
        (len(big.encode()),)
    ]
    client.command("CREATE TABLE kv (k String, v Int32) ENGINE = MergeTree ORDER BY k")
    client.insert("kv", [["a", 1], ["b", 2], [tricky, 3]], column_names=["k", "v"])
    assert client.command("SELECT v FROM kv WHERE k = {k:String}", parameters={"k": tricky}) == 3


def test_insert_deduplication_token_is_honoured(client: Client) -> None:
    client.command(
        "CREATE TABLE dedup (k String, v Int64) ENGINE = MergeTree ORDER BY k"
        " SETTINGS non_replicated_deduplication_window = 100"
    )
    rows = [[f"k{i}", i] for i in range(10)]

    def insert(token: str) -> None:
        client.insert(
            "dedup", rows, column_names=["k", "v"], settings={"insert_deduplication_token": token}
        )

    insert("batch-1")
    insert("batch-1")  # a retry of the same batch: dropped
    assert count(client, "dedup") == 10
    insert("batch-2")  # the same rows under another token: a different batch, kept
    assert count(client, "dedup") == 20
    insert("batch-1")
    assert count(client, "dedup") == 20


def test_errors_carry_clickhouse_codes(client: Client) -> None:
    with pytest.raises(DatabaseError) as unknown_table:
        client.query("SELECT * FROM no_such_table")
    assert unknown_table.value.code == 60
    assert "UNKNOWN_TABLE" in str(unknown_table.value)

    with pytest.raises(DatabaseError) as syntax:
        client.command("SELEC 1")
    assert syntax.value.code == 62
    assert "SYNTAX_ERROR" in str(syntax.value)

    with pytest.raises(DatabaseError) as insert_missing:
        client.insert("no_such_table", [[1]], column_names=["a"], column_type_names=["Int32"])
    assert insert_missing.value.code == 60

    client.command("CREATE TABLE typed (a Int32) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(DatabaseError) as bad_data:
        client.raw_insert("typed", ["a"], insert_block=b"not-a-number\n", fmt="TabSeparated")
    assert bad_data.value.code in (6, 27, 72)  # one of ClickHouse's CANNOT_PARSE_* codes
    # The server is still serving after the failures.
    assert client.command("SELECT 2") == 2


@pytest.mark.parametrize("encoding", ["lz4", "zstd", "gzip"])
def test_raw_insert_with_compressed_body_and_query_in_url(server: Any, encoding: str) -> None:
    """Compressed raw inserts put the INSERT in the ``query`` URL parameter and only the data,
    compressed, in the body: the server must join them the way ClickHouse does."""
    compressors: dict[str, Callable[[bytes], bytes]] = {
        "lz4": lz4_frame.compress,
        "zstd": zstd.compress,
        "gzip": gzip.compress,
    }
    c = connect(server, False)
    try:
        c.command("CREATE TABLE raw (a Int32, s String) ENGINE = MergeTree ORDER BY a")
        data = b"".join(f"{i}\tname {i}\n".encode() for i in range(1000))
        summary = c.raw_insert(
            "raw",
            ["a", "s"],
            insert_block=compressors[encoding](data),
            fmt="TabSeparated",
            compression=encoding,
        )
        assert summary.written_rows == 1000
        assert c.query("SELECT count(), sum(a) FROM raw").result_rows == [(1000, 499500)]
    finally:
        c.close()


def test_error_responses_match_clickhouse(server: Any) -> None:
    status, headers, body = http(server, {}, b"SELECT * FROM missing")
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception: ")
    assert b"(UNKNOWN_TABLE) (version " in body

    status, headers, body = http(server, {}, b"SELEC 1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62")

    status, headers, _ = http(server, {}, b"SELECT 1; SELECT 2")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62")

    status, headers, _ = http(server, {}, b"x", {"Content-Encoding": "snappy"})
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (501, "48")

    # ClickHouse runs GET requests read-only.
    status, headers, _ = http(
        server, {"query": "CREATE TABLE g (a Int8) ENGINE = Memory"}, method="GET"
    )
    assert headers["X-ClickHouse-Exception-Code"] == "164"
    status, _, body = http(server, {"query": "SELECT 1 + 1"}, method="GET")
    assert (status, body) == (200, b"2\n")


def test_response_headers_and_compression(server: Any) -> None:
    status, headers, body = http(
        server,
        {"query": "SELECT number FROM numbers(3)", "default_format": "JSONEachRow"},
        headers={"Accept-Encoding": "zstd;q=0, gzip"},
    )
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b'{"number":0}\n{"number":1}\n{"number":2}\n'
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert headers["X-ClickHouse-Timezone"] in ("UTC", "Etc/UTC")
    assert headers["X-ClickHouse-Server-Display-Name"]
    assert headers["X-ClickHouse-Query-Id"]
    assert json.loads(headers["X-ClickHouse-Summary"])["result_rows"] == "3"

    _, headers, body = http(
        server,
        {"query": "SELECT 1 FORMAT CSV", "enable_http_compression": "0", "query_id": "q-1"},
        headers={"Accept-Encoding": "gzip"},
    )
    assert "Content-Encoding" not in headers
    assert (body, headers["X-ClickHouse-Format"], headers["X-ClickHouse-Query-Id"]) == (
        b"1\n",
        "CSV",
        "q-1",
    )

    http(server, {}, b"CREATE TABLE h (a Int32) ENGINE = MergeTree ORDER BY a")
    status, headers, _ = http(server, {"query": "INSERT INTO h FORMAT CSV"}, b"1\n2\n3\n")
    assert status == 200
    assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "3"
    assert "X-ClickHouse-Format" not in headers


def test_sessions_keep_their_state_and_request_settings_do_not_leak(server: Any) -> None:
    one = connect(server)  # clickhouse-connect makes up a session_id per client by default
    other = connect(server, autogenerate_session_id=False)
    try:
        block_size = "SELECT getSetting('max_block_size')"
        one.command("SET max_block_size = 12345")
        one.command("CREATE TEMPORARY TABLE scratch (a Int32)")
        one.command("INSERT INTO scratch VALUES (1), (2)")
        assert one.command(block_size) == 12345
        assert one.command("SELECT count() FROM scratch") == 2
        # Settings in the request apply to that request only.
        assert one.command(block_size, settings={"max_block_size": 777}) == 777
        assert one.command(block_size) == 12345
        # A client without a session sees neither the setting nor the temporary table.
        assert other.command(block_size) != 12345
        with pytest.raises(DatabaseError) as missing:
            other.command("SELECT count() FROM scratch")
        assert missing.value.code == 60
        # Setting values arrive as they were sent (a backslash is not an escape).
        odd = "tok\\t'1"
        token = "SELECT getSetting('insert_deduplication_token')"
        for c in (one, other):
            settings = {"insert_deduplication_token": odd}
            assert c.query(token, settings=settings).result_rows == [(odd,)]
            assert c.query(token).result_rows == [("",)]
        # Unknown settings are ignored rather than failing the request.
        assert one.command("SELECT 7", settings={"not_a_real_setting": 1}) == 7
    finally:
        one.close()
        other.close()


def test_two_clients_in_threads_insert_concurrently(server: Any) -> None:
    setup = connect(server)
    try:
        setup.command(
            "CREATE TABLE concurrent (writer UInt8, n UInt32, at DateTime64(3, 'UTC'))"
            " ENGINE = MergeTree ORDER BY (writer, n)"
        )
    finally:
        setup.close()
    start = threading.Barrier(2)

    def writer(number: int) -> int:
        # Production settings: lz4 and no session, one client per worker.
        c = connect(server, "lz4", autogenerate_session_id=False)
        try:
            start.wait(timeout=30)
            written = 0
            for n in range(100):
                summary = c.insert(
                    "concurrent",
                    [[number, n, datetime.now(UTC)]],
                    column_names=["writer", "n", "at"],
                    settings={"insert_deduplication_token": f"w{number}-{n}"},
                )
                written += summary.written_rows
            return written
        finally:
            c.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        written = list(pool.map(writer, [1, 2]))
    assert written == [100, 100]
    check = connect(server)
    try:
        assert check.query(
            "SELECT writer, count(), uniqExact(n) FROM concurrent GROUP BY writer ORDER BY writer"
        ).result_rows == [(1, 100, 100), (2, 100, 100)]
    finally:
        check.close()


CHILD = textwrap.dedent(
    """
    import json, sys
    import chdb
    import clickhouse_connect

    port, path = int(sys.argv[1]), sys.argv[2]
    try:
        chdb.connect(path)
        direct = "opened"
    except Exception as exc:
        direct = str(exc)
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=port, compress="lz4", autogenerate_session_id=False
    )
    summary = client.insert(
        "from_child", [[i, f"child {i}"] for i in range(25)], column_names=["i", "s"]
    )
    print(json.dumps({"direct": direct, "written": summary.written_rows}))
    """
)


def test_client_in_a_separate_process_inserts_while_the_server_holds_the_directory(
    server: Any, tmp_path: Path
) -> None:
    c = connect(server)
    try:
        c.command("CREATE TABLE from_child (i Int32, s String) ENGINE = MergeTree ORDER BY i")
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        done = subprocess.run(
            [sys.executable, str(script), str(server.port), str(server.engine.path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        # The directory really is locked to the server's process (chDB logs the reason) ...
        assert report["direct"] != "opened"
        assert "Cannot lock file" in report["direct"] + done.stderr
        # ... and the other process wrote through HTTP all the same.
        assert report["written"] == 25
        assert c.query("SELECT count(), max(s) FROM from_child").result_rows == [(25, "child 9")]
    finally:
        c.close()


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                return process.stdout.readline()
    raise AssertionError("the server printed nothing before the deadline")


def test_cli_prints_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "cli-store"
    pid_file = tmp_path / "run" / "chdb-http.pid"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupiter_local.chdb_http",
            "--path",
            str(data),
            "--port",
            "0",
            "--pid-file",
            str(pid_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(process, time.monotonic() + 60)
        assert line.startswith("ready http://127.0.0.1:"), line
        port = int(line.split()[1].rsplit(":", 1)[1])
        assert pid_file.read_text().strip() == str(process.pid)
        c = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress="lz4")
        try:
            c.command("CREATE TABLE kept (a Int32) ENGINE = MergeTree ORDER BY a")
            c.insert("kept", [[1], [2], [3]], column_names=["a"])
        finally:
            c.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert not pid_file.exists()
    # chDB was closed: the directory opens again (here, in this process) with the data in it.
    with chdb_http.serve(data, "127.0.0.1", 0) as again:
        c = connect(again)
        try:
            assert c.command("SELECT sum(a) FROM kept") == 6
        finally:
            c.close()


@pytest.mark.parametrize(
    ("sql", "head", "fmt", "data"),
    [
        (
            b"INSERT INTO t (a, b) FORMAT Native\n\x00\x01",
            b"INSERT INTO t (a, b) ",
            "Native",
            b"\x00\x01",
        ),
        (b"insert into `format` format CSV 1,2\n", b"insert into `format` ", "CSV", b"1,2\n"),
        (b"INSERT INTO format FORMAT TSV\r\n1\n", b"INSERT INTO format ", "TSV", b"1\n"),
        (
            b"/* c */ INSERT INTO db.t VALUES (1, 'FORMAT')",
            b"/* c */ INSERT INTO db.t ",
            "Values",
            b" (1, 'FORMAT')",
        ),
        (
            b"INSERT INTO t SETTINGS a = 'x' FORMAT JSONEachRow\n{}",
            b"INSERT INTO t SETTINGS a = 'x' ",
            "JSONEachRow",
            b"{}",
        ),
    ],
)
def test_insert_data_is_found_where_clickhouse_finds_it(
    sql: bytes, head: bytes, fmt: str, data: bytes
) -> None:
    statement = chdb_http.analyse(sql)
    assert (statement.insert_head, statement.insert_format) == (head, fmt)
    assert sql[statement.data_offset :] == data


def test_statements_without_inline_data() -> None:
    select = chdb_http.analyse(b"INSERT INTO t SELECT * FROM VALUES('a Int8', 1)")
    assert select.insert_head is None
    assert chdb_http.analyse(b"-- note\nSELECT 1 FORMAT JSON").output_format == "JSON"
    assert chdb_http.analyse(b"SELECT ';' ; ").multi_statement is False
    assert chdb_http.analyse(b"SELECT 1; SELECT 2").multi_statement is True
    assert chdb_http.analyse(b"  -- only a comment").empty
    assert chdb_http.analyse(b"SET max_threads = 1, `readonly` = 0").set_names == (
        "max_threads",
        "readonly",
    )


# --------------------------------------------------------------------------------------------
# TLS: HTTPS, and client certificates required with a client CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def https_get(
    port: int, pki: Pki, cert: tuple[Path, Path] | None = None, path: str = "/ping"
) -> bytes:
    context = ssl.create_default_context(cafile=pki.ca_cert)
    if cert is not None:
        context.load_cert_chain(*cert)
    with urllib.request.urlopen(
        f"https://localhost:{port}{path}", timeout=10, context=context
    ) as response:
        return bytes(response.read())


def test_tls_serves_https_with_its_certificate(tmp_path: Path, pki: Pki) -> None:
    tls = chdb_http.tls_context(pki.server_cert, pki.server_key)
    with chdb_http.serve(tmp_path / "chdb", "127.0.0.1", 0, tls=tls) as handle:
        assert handle.url == f"https://127.0.0.1:{handle.port}"
        assert https_get(handle.port, pki) == b"Ok.\n"
        query = urllib.parse.urlencode({"query": "SELECT 40 + 2"})
        assert https_get(handle.port, pki, path=f"/?{query}") == b"42\n"
        # A client that trusts another CA refuses the server ...
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(
                f"https://127.0.0.1:{handle.port}/ping",
                timeout=10,
                context=ssl.create_default_context(cafile=pki.other_ca_cert),
            )
        # ... and plain HTTP gets no answer, and the server goes on serving.
        with pytest.raises((urllib.error.URLError, ConnectionError, HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{handle.port}/ping", timeout=10)
        assert https_get(handle.port, pki) == b"Ok.\n"


def test_tls_with_a_client_ca_requires_a_client_certificate_it_signed(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    tls = chdb_http.tls_context(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    with chdb_http.serve(tmp_path / "chdb", "127.0.0.1", 0, tls=tls) as handle:
        assert https_get(handle.port, pki, (pki.client_cert, pki.client_key)) == b"Ok.\n"
        # Refused with the TLS alert that says why, not a reset connection.
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            https_get(handle.port, pki)
        with pytest.raises(ssl.SSLError, match="UNKNOWN_CA"):
            https_get(handle.port, pki, (pki.stranger_cert, pki.stranger_key))
        assert https_get(handle.port, pki, (pki.client_cert, pki.client_key)) == b"Ok.\n"
    failed = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(failed) == 2, failed
    assert "did not return a certificate" in failed[0]


@pytest.mark.parametrize(
    "args",
    [["--tls-cert", "c.pem"], ["--tls-key", "k.pem"], ["--tls-client-ca", "ca.pem"]],
    ids=["cert-alone", "key-alone", "client-ca-alone"],
)
def test_cli_refuses_incomplete_tls_options(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        chdb_http.main(["--port", "0", *args])
    assert exit_info.value.code == 2
    assert "--tls-" in capsys.readouterr().err
