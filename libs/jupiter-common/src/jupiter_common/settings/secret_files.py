"""Secrets (``CLICKHOUSE_PASSWORD``, ``KAFKA_SASL_PASSWORD``) given as files, the ``*_FILE``
convention of container secrets, and kept out of every process the driver starts."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Final

from jupiter_common.settings.model import SECRET_FIELDS, alias

SECRET_FILE_SUFFIX: Final = "_FILE"  # noqa: S105 - a name suffix, not a password
"""``<secret variable>_FILE`` names a file that holds the secret."""
_SECRET_FILE_MAX_BYTES: Final = 64 * 1024

SECRET_VARIABLES: Final = frozenset(alias(field) for field in SECRET_FIELDS)
"""The environment variables that hold secrets: ``CLICKHOUSE_PASSWORD``, ``KAFKA_SASL_PASSWORD``."""


def secret_file_variable_names() -> frozenset[str]:
    """``CLICKHOUSE_PASSWORD_FILE``, ``KAFKA_SASL_PASSWORD_FILE``: where to read each secret from."""
    return frozenset(name + SECRET_FILE_SUFFIX for name in SECRET_VARIABLES)


def drop_secret_variables(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove the secret variables from ``environ`` (default: this process's environment, so that
    no process started afterwards inherits them); returns the names removed.

    The job's driver calls this once it has its settings and before it starts Flink: Flink's
    Python runner (Beam) logs the whole environment of the Python workers, which inherit it from
    the JVM, which inherits it from the driver. The ``*_FILE`` variables stay: they are paths.
    """
    env = os.environ if environ is None else environ
    removed = sorted(name for name in SECRET_VARIABLES if name in env)
    for name in removed:
        del env[name]
    return removed


def read_secret_files(env: Mapping[str, str], values: dict[str, object]) -> list[str]:
    """Put the secrets given as ``<NAME>_FILE`` into ``values``; returns what is wrong (a file
    that cannot be read, a secret given both ways), naming the variable, never the secret."""
    problems: list[str] = []
    for name in sorted(SECRET_VARIABLES):
        file_variable = name + SECRET_FILE_SUFFIX
        path = env.get(file_variable, "")
        if not path:
            continue
        if name in values:
            del values[name]
            problems.append(f"{name} and {file_variable} are both set: set only one of them")
            continue
        try:
            secret = _read_secret_file(path)
        except _UnreadableSecretError as exc:
            problems.append(f"{file_variable}={path!r}: cannot read the secret: {exc}")
            continue
        if secret:  # an empty file counts as unset, as an empty variable does
            values[name] = secret
    return problems


class _UnreadableSecretError(Exception):
    """Why a secret file cannot be read; never includes the file's content."""


def _read_secret_file(path: str) -> str:
    """The secret in ``path``: its text without one trailing line break (``echo secret > file``
    adds one; a Kubernetes Secret file has none)."""
    try:
        with Path(path).expanduser().open("rb") as file:
            data = file.read(_SECRET_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise _UnreadableSecretError(exc.strerror or type(exc).__name__) from None
    if len(data) > _SECRET_FILE_MAX_BYTES:
        raise _UnreadableSecretError(f"larger than {_SECRET_FILE_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _UnreadableSecretError("not UTF-8 text") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")
