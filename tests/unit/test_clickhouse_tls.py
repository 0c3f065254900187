"""ClickHouse over TLS: the settings (CLICKHOUSE_SECURE, _CA_CERT, _CLIENT_CERT, _CLIENT_KEY,
_VERIFY) and the client Jupiter makes from them (``jupiter_common.clickhouse.connect``), over real
TLS on 127.0.0.1 against the local endpoint (jupiter_local.chdb_http) with a private CA."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tls_certs import Pki, make_pki

from jupiter_common.clickhouse import connect, ensure_table, tls_options
from jupiter_common.errors import ClickHouseTLSError, SettingsError
from jupiter_common.settings import Settings, load_settings
from jupiter_common.tables import SESSION_MOVEMENTS
from jupiter_local import chdb_http


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def serve(tmp_path: Path, pki: Pki, *, mutual: bool, host: str = "127.0.0.1") -> Any:
    """The endpoint over HTTPS; ``mutual``: clients need a certificate the CA signed."""
    tls = chdb_http.tls_context(
        pki.server_cert, pki.server_key, client_ca=pki.ca_cert if mutual else None
    )
    return chdb_http.serve(tmp_path / "chdb", host, 0, tls=tls)


@pytest.fixture
def https(tmp_path: Path, pki: Pki) -> Iterator[Any]:
    with serve(tmp_path, pki, mutual=False) as handle:
        yield handle


@pytest.fixture
def mtls(tmp_path: Path, pki: Pki) -> Iterator[Any]:
    with serve(tmp_path, pki, mutual=True) as handle:
        yield handle


def settings_for(server: Any, **variables: str | Path) -> Settings:
    environ = {
        "CLICKHOUSE_HOST": server.host,
        "CLICKHOUSE_PORT": str(server.port),
        "CLICKHOUSE_SECURE": "true",
        **{name: str(value) for name, value in variables.items()},
    }
    return load_settings("movements", environ)


def client_cert(pki: Pki) -> dict[str, Path]:
    return {"CLICKHOUSE_CLIENT_CERT": pki.client_cert, "CLICKHOUSE_CLIENT_KEY": pki.client_key}


def round_trip(settings: Settings) -> int:
    """Create the movements table, insert a row and count it, as a job does."""
    client = connect(settings)
    try:
        ensure_table(client, SESSION_MOVEMENTS, "default")
        client.command("INSERT INTO session_movements (status) VALUES ('en_route')")
        return int(str(client.command("SELECT count() FROM session_movements")))
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# Verification of the server's certificate


def test_with_the_private_ca_the_server_is_verified_and_queries_work(https: Any, pki: Pki) -> None:
    settings = settings_for(https, CLICKHOUSE_CA_CERT=pki.ca_cert)
    assert settings.clickhouse_verify
    assert tls_options(settings) == {"verify": True, "ca_cert": str(pki.ca_cert)}
    assert round_trip(settings) == 1


def test_localhost_is_verified_by_its_name_too(https: Any, pki: Pki) -> None:
    settings = settings_for(https, CLICKHOUSE_HOST="localhost", CLICKHOUSE_CA_CERT=pki.ca_cert)
    assert round_trip(settings) == 1


def test_without_the_ca_the_certificate_cannot_be_verified(https: Any) -> None:
    with pytest.raises(ClickHouseTLSError) as info:
        connect(settings_for(https))
    text = str(info.value)
    assert f"the certificate of the ClickHouse server 127.0.0.1:{https.port}" in text
    # The reason is OpenSSL's; which one depends on the system's trust store.
    assert re.search(r"cannot be verified \((unable to get local issuer|self-signed)", text)
    assert "the system's trusted CAs (set CLICKHOUSE_CA_CERT" in text


def test_a_ca_that_did_not_sign_the_server_certificate_is_named(https: Any, pki: Pki) -> None:
    with pytest.raises(ClickHouseTLSError) as info:
        connect(settings_for(https, CLICKHOUSE_CA_CERT=pki.other_ca_cert))
    text = str(info.value)
    assert "cannot be verified (unable to get local issuer certificate)" in text
    assert f"against CLICKHOUSE_CA_CERT={pki.other_ca_cert}" in text


def test_the_host_name_is_verified(tmp_path: Path, pki: Pki) -> None:
    # 127.0.0.2 is a loopback address too, but not in the certificate (127.0.0.1, localhost).
    try:
        handle = serve(tmp_path, pki, mutual=False, host="127.0.0.2")
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2: {exc}")
    with handle, pytest.raises(ClickHouseTLSError, match="IP address mismatch"):
        connect(settings_for(handle, CLICKHOUSE_CA_CERT=pki.ca_cert))


def test_verify_false_connects_without_a_ca_and_warns(
    https: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(https, CLICKHOUSE_VERIFY="false")
    with caplog.at_level(logging.WARNING, logger="jupiter_common.clickhouse"):
        assert round_trip(settings) == 1
    warnings = [r for r in caplog.records if r.name == "jupiter_common.clickhouse"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert (
        warnings[0]
        .getMessage()
        .startswith(
            f"CLICKHOUSE_VERIFY=false: the certificate of the ClickHouse server 127.0.0.1:{https.port}"
            " is not verified"
        )
    )


def test_plain_http_settings_pass_no_tls_options() -> None:
    assert tls_options(load_settings("movements", {})) == {}


# --------------------------------------------------------------------------------------------
# Client certificates (mutual TLS)


def test_mtls_accepts_the_client_certificate(mtls: Any, pki: Pki) -> None:
    settings = settings_for(mtls, CLICKHOUSE_CA_CERT=pki.ca_cert, **client_cert(pki))
    assert round_trip(settings) == 1


def test_mtls_refuses_a_client_without_a_certificate(mtls: Any, pki: Pki) -> None:
    with pytest.raises(ClickHouseTLSError) as info:
        connect(settings_for(mtls, CLICKHOUSE_CA_CERT=pki.ca_cert))
    text = str(info.value)
    assert f"the ClickHouse server 127.0.0.1:{mtls.port} refused the TLS connection" in text
    assert (
        "with no client certificate (set CLICKHOUSE_CLIENT_CERT and CLICKHOUSE_CLIENT_KEY)" in text
    )
    assert "CERTIFICATE_REQUIRED" in text


def test_mtls_refuses_a_certificate_of_another_ca(mtls: Any, pki: Pki) -> None:
    settings = settings_for(
        mtls,
        CLICKHOUSE_CA_CERT=pki.ca_cert,
        CLICKHOUSE_CLIENT_CERT=pki.stranger_cert,
        CLICKHOUSE_CLIENT_KEY=pki.stranger_key,
    )
    with pytest.raises(ClickHouseTLSError, match="UNKNOWN_CA") as info:
        connect(settings)
    assert f"with CLICKHOUSE_CLIENT_CERT={pki.stranger_cert}" in str(info.value)


@pytest.mark.parametrize(
    ("password", "mode"), [("", "mutual"), ("s3cret", "strict")], ids=["no-password", "password"]
)
def test_how_clickhouse_authenticates_a_client_with_a_certificate(
    mtls: Any, pki: Pki, password: str, mode: str
) -> None:
    """Without a password the user is authenticated by its certificate (clickhouse-connect's
    ``mutual`` mode: ClickHouse's ssl_certificates users); with one, by the password."""
    settings = settings_for(
        mtls, CLICKHOUSE_CA_CERT=pki.ca_cert, CLICKHOUSE_PASSWORD=password, **client_cert(pki)
    )
    assert tls_options(settings) == {
        "verify": True,
        "ca_cert": str(pki.ca_cert),
        "client_cert": str(pki.client_cert),
        "client_cert_key": str(pki.client_key),
        "tls_mode": mode,
    }
    assert round_trip(settings) == 1


def test_a_tls_file_missing_where_the_client_is_made_is_named(
    mtls: Any, pki: Pki, tmp_path: Path
) -> None:
    """A TaskManager gets the settings from the driver: the files must be there too."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("ca.crt", "client.crt", "client.key"):
        shutil.copy(pki.ca_cert.parent / name, copy / name)
    settings = settings_for(
        mtls,
        CLICKHOUSE_CA_CERT=copy / "ca.crt",
        CLICKHOUSE_CLIENT_CERT=copy / "client.crt",
        CLICKHOUSE_CLIENT_KEY=copy / "client.key",
    )
    (copy / "client.key").unlink()
    with pytest.raises(ClickHouseTLSError) as info:
        connect(settings)
    assert f"CLICKHOUSE_CLIENT_KEY={copy / 'client.key'} cannot be read on " in str(info.value)
    assert "same path on the JobManager and every TaskManager" in str(info.value)


# --------------------------------------------------------------------------------------------
# Settings errors: each names the variable; no key content in any message


def settings_error(environ: dict[str, str | Path]) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings("movements", {name: str(value) for name, value in environ.items()})
    assert info.value.__cause__ is None
    text = str(info.value)
    assert text.startswith("invalid settings:")
    return [line.strip() for line in text.splitlines()[1:]]


def key_body(path: Path) -> list[str]:
    """The base64 lines of a PEM key: none may show in any message."""
    return [line for line in path.read_text().splitlines() if not line.startswith("-----")]


@pytest.mark.parametrize(
    "variables",
    [
        ["CLICKHOUSE_CA_CERT"],
        ["CLICKHOUSE_CLIENT_CERT", "CLICKHOUSE_CLIENT_KEY"],
        ["CLICKHOUSE_CA_CERT", "CLICKHOUSE_CLIENT_CERT", "CLICKHOUSE_CLIENT_KEY"],
    ],
    ids=["ca", "client", "all"],
)
@pytest.mark.parametrize("secure", [None, "false"], ids=["secure-unset", "secure-false"])
def test_tls_files_need_https(pki: Pki, variables: list[str], secure: str | None) -> None:
    files = {
        "CLICKHOUSE_CA_CERT": pki.ca_cert,
        "CLICKHOUSE_CLIENT_CERT": pki.client_cert,
        "CLICKHOUSE_CLIENT_KEY": pki.client_key,
    }
    environ: dict[str, str | Path] = {name: files[name] for name in variables}
    if secure is not None:
        environ["CLICKHOUSE_SECURE"] = secure
    lines = settings_error(environ)
    assert len(lines) == 1
    verb = "needs" if len(variables) == 1 else "need"
    assert lines[0] == (
        f"{', '.join(variables)} {verb} CLICKHOUSE_SECURE=true: TLS settings apply to HTTPS only"
    )


def test_verify_false_needs_https() -> None:
    assert settings_error({"CLICKHOUSE_VERIFY": "false"}) == [
        "CLICKHOUSE_VERIFY=false needs CLICKHOUSE_SECURE=true: TLS settings apply to HTTPS only"
    ]


@pytest.mark.parametrize("given", ["CLICKHOUSE_CLIENT_CERT", "CLICKHOUSE_CLIENT_KEY"])
def test_client_certificate_and_key_go_together(pki: Pki, given: str) -> None:
    path = pki.client_cert if given == "CLICKHOUSE_CLIENT_CERT" else pki.client_key
    missing = ({"CLICKHOUSE_CLIENT_CERT", "CLICKHOUSE_CLIENT_KEY"} - {given}).pop()
    lines = settings_error({"CLICKHOUSE_SECURE": "true", given: path})
    assert lines == [
        "CLICKHOUSE_CLIENT_CERT and CLICKHOUSE_CLIENT_KEY go together (mutual TLS):"
        f" {missing} is not set"
    ]


def test_a_key_that_is_not_the_certificates_is_refused(pki: Pki) -> None:
    lines = settings_error(
        {
            "CLICKHOUSE_SECURE": "true",
            "CLICKHOUSE_CLIENT_CERT": pki.client_cert,
            "CLICKHOUSE_CLIENT_KEY": pki.stranger_key,
        }
    )
    assert lines == [
        f"CLICKHOUSE_CLIENT_KEY={str(pki.stranger_key)!r} is not the key of"
        f" CLICKHOUSE_CLIENT_CERT={str(pki.client_cert)!r}: [X509: KEY_VALUES_MISMATCH] key"
        " values mismatch"
    ]
    assert not any(line in "\n".join(lines) for line in key_body(pki.stranger_key))


def test_an_encrypted_key_is_refused_without_a_prompt(pki: Pki, tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        [
            *("openssl", "pkey", "-in", str(pki.client_key), "-aes256"),
            *("-passout", "pass:pw", "-out", str(encrypted)),
        ],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    lines = settings_error(
        {
            "CLICKHOUSE_SECURE": "true",
            "CLICKHOUSE_CLIENT_CERT": pki.client_cert,
            "CLICKHOUSE_CLIENT_KEY": encrypted,
        }
    )
    assert lines == [
        f"CLICKHOUSE_CLIENT_KEY={str(encrypted)!r}: the key is encrypted: give it unencrypted"
        " (the ClickHouse client takes no key password) and protect the file instead"
    ]


@pytest.mark.parametrize(
    ("variable", "wrong", "reason"),
    [
        ("CLICKHOUSE_CA_CERT", "client_key", "not a PEM certificate"),
        ("CLICKHOUSE_CLIENT_CERT", "client_key", "not a PEM certificate"),
        ("CLICKHOUSE_CLIENT_KEY", "client_cert", "not a PEM private key"),
    ],
)
def test_a_file_of_the_wrong_kind_is_named_and_not_shown(
    pki: Pki, variable: str, wrong: str, reason: str
) -> None:
    path: Path = getattr(pki, wrong)
    lines = settings_error({"CLICKHOUSE_SECURE": "true", variable: path})
    assert len(lines) == 1
    assert lines[0].startswith(f"{variable}={str(path)!r}: {reason}")
    assert not any(line in lines[0] for line in key_body(pki.client_key))


def test_an_unreadable_key_is_named(pki: Pki, tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    shutil.copy(pki.client_key, key)
    key.chmod(0)
    if os.access(key, os.R_OK):
        pytest.skip("running as a user who reads any file (root)")
    lines = settings_error(
        {
            "CLICKHOUSE_SECURE": "true",
            "CLICKHOUSE_CLIENT_CERT": pki.client_cert,
            "CLICKHOUSE_CLIENT_KEY": key,
        }
    )
    assert lines == [f"CLICKHOUSE_CLIENT_KEY={str(key)!r}: cannot read the file: Permission denied"]


def test_every_bad_tls_file_is_reported_together(pki: Pki, tmp_path: Path) -> None:
    lines = settings_error(
        {
            "CLICKHOUSE_SECURE": "true",
            "CLICKHOUSE_CA_CERT": tmp_path / "missing-ca.pem",
            "CLICKHOUSE_CLIENT_CERT": pki.client_key,
            "CLICKHOUSE_CLIENT_KEY": tmp_path,
        }
    )
    assert [line.split("=", 1)[0] for line in lines] == [
        "CLICKHOUSE_CA_CERT",
        "CLICKHOUSE_CLIENT_CERT",
        "CLICKHOUSE_CLIENT_KEY",
    ]


def test_tls_paths_become_absolute_and_keep_their_links(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python workers run in other directories; a Kubernetes Secret volume swaps its files
    behind symbolic links when the Secret changes, so a link is kept, not resolved."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.crt").symlink_to(pki.ca_cert)
    for name in ("client.crt", "client.key"):
        shutil.copy(pki.ca_cert.parent / name, tmp_path / "tls" / name)
    settings = load_settings(
        "movements",
        {
            "CLICKHOUSE_SECURE": "true",
            "CLICKHOUSE_CA_CERT": "tls/ca.crt",
            "CLICKHOUSE_CLIENT_CERT": "./tls/client.crt",
            "CLICKHOUSE_CLIENT_KEY": "tls/../tls/client.key",
        },
    )
    assert settings.clickhouse_ca_cert == str(tmp_path / "tls" / "ca.crt")
    assert settings.clickhouse_client_cert == str(tmp_path / "tls" / "client.crt")
    assert settings.clickhouse_client_key == str(tmp_path / "tls" / "client.key")
    # Paths only: the settings a job logs name the files and hold nothing of the key.
    redacted = repr(settings.redacted())
    assert str(tmp_path / "tls" / "client.key") in redacted
    assert not any(line in redacted or line in repr(settings) for line in key_body(pki.client_key))


def test_verify_defaults_to_true() -> None:
    assert load_settings("movements", {}).clickhouse_verify
    assert not load_settings(
        "movements", {"CLICKHOUSE_SECURE": "true", "CLICKHOUSE_VERIFY": "false"}
    ).clickhouse_verify
