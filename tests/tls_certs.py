"""A private certificate authority for tests, made with the ``openssl`` command line (the
``cryptography`` package is not in the environment): a CA, a server certificate for 127.0.0.1 and
localhost, and client certificates, each a PEM file in a directory of the test's own."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"


@dataclass(frozen=True)
class Pki:
    """The files of one private CA: ``client_*`` is signed by it, ``stranger_*`` by another CA,
    ``other_ca_cert``."""

    ca_cert: Path
    other_ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"openssl {args[0]} failed:\n{result.stderr}"


def _new_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-keyout", key, "-out", cert, "-days", DAYS, "-subj", f"/CN=Jupiter test {name}"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    return cert, key


def _issue(
    directory: Path, name: str, ca: tuple[Path, Path], extensions: list[str]
) -> tuple[Path, Path]:
    """A certificate for ``name`` signed by ``ca`` (cert, key), with ``extensions``."""
    cert, key, request = (directory / f"{name}{suffix}" for suffix in (".crt", ".key", ".csr"))
    _openssl(
        *("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-keyout", key, "-out", request, "-subj", f"/CN={name}"),
    )
    config = directory / f"{name}.ext"
    config.write_text(
        "\n".join(
            [
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature",
                "subjectKeyIdentifier=hash",
                "authorityKeyIdentifier=keyid",
                *extensions,
            ]
        )
        + "\n"
    )
    _openssl(
        *("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial"),
        *("-out", cert, "-days", DAYS, "-extfile", config),
    )
    return cert, key


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate (SAN 127.0.0.1 and localhost) and a client certificate signed
    by it, and a client certificate signed by another CA, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _new_ca(directory, "ca")
    server = _issue(
        directory,
        "server",
        ca,
        ["subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth"],
    )
    client = _issue(directory, "client", ca, ["extendedKeyUsage=clientAuth"])
    other_ca = _new_ca(directory, "other-ca")
    stranger = _issue(directory, "stranger", other_ca, ["extendedKeyUsage=clientAuth"])
    return Pki(
        ca_cert=ca[0],
        other_ca_cert=other_ca[0],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        stranger_cert=stranger[0],
        stranger_key=stranger[1],
    )
