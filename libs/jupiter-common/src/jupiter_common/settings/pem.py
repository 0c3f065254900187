"""The TLS files of the ClickHouse settings: checked at start-up so that a wrong file stops the job
with a message naming the variable, never quoting the file (a key is a secret)."""

from __future__ import annotations

import re
import ssl
from typing import Final

PEM_FILE_MAX_BYTES: Final = 1024 * 1024
PEM_KINDS: Final = {
    "clickhouse_ca_cert": "CA",
    "clickhouse_client_cert": "certificate",
    "clickhouse_client_key": "key",
}
_SSL_LOCATION: Final = re.compile(r"\s*\(_ssl\.c:\d+\)$")


def check_pem(path: str, kind: str) -> None:
    """Raise ``ValueError`` saying why ``path`` is not a usable PEM file of ``kind`` (``CA``,
    ``certificate`` or ``key``). The message never quotes the file: a key is a secret."""
    try:
        with open(path, "rb") as file:
            data = file.read(PEM_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None
    if len(data) > PEM_FILE_MAX_BYTES:
        raise ValueError(f"cannot read the file: larger than {PEM_FILE_MAX_BYTES} bytes")
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
            raise ValueError(f"not a PEM CA bundle: {ssl_reason(exc)}") from None


def no_password() -> str:
    """Key password callback: none, so that OpenSSL never prompts on a terminal."""
    return ""


def ssl_reason(exc: BaseException) -> str:
    """An ssl/OS error as text, without the location in Python's C source."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return _SSL_LOCATION.sub("", text)
