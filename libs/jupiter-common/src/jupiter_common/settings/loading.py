"""Reading the settings from the environment, and saying what is wrong with them: every invalid
variable at once, by name, with what it accepts, never a secret."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from jupiter_common.errors import SettingsError
from jupiter_common.registry import job_names
from jupiter_common.settings.model import NO_JOB, SECRET_FIELDS, Settings, alias
from jupiter_common.settings.secret_files import read_secret_files


def load_settings(
    job: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Read the settings for ``job`` from ``environ`` (default: ``os.environ``).

    Variables set to the empty string count as unset. A secret can be given as a file instead:
    ``<NAME>_FILE`` (``CLICKHOUSE_PASSWORD_FILE`` ...), not together with ``<NAME>``.
    ``overrides`` (by field name) win over the environment; the job's command line uses them.
    Raises :class:`SettingsError` naming every invalid variable and what it accepts, never a
    secret.
    """
    env = os.environ if environ is None else environ
    names = Settings.variable_names()
    values: dict[str, object] = {name: env[name] for name in names if env.get(name, "") != ""}
    problems = read_secret_files(env, values)
    for field, value in (overrides or {}).items():
        values[alias(field)] = value
    try:
        settings = Settings.model_validate({"job": job, **values})
    except ValidationError as exc:
        raise SettingsError(_invalid([*problems, *_explain(exc, values)])) from None
    if problems:
        raise SettingsError(_invalid(problems)) from None
    return _resolve_paths(settings)


def load_shared_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings every job shares (Kafka, ClickHouse, checkpoint directory ...), read for no
    job in particular: for tools that act on all jobs. :meth:`Settings.for_job` gives a job's
    own view (consumer group, job name, checkpoint folder). Raises :class:`SettingsError` as
    :func:`load_settings` does."""
    return load_settings(NO_JOB, environ)


def _invalid(problems: list[str]) -> str:
    return "invalid settings:\n  " + "\n  ".join(problems)


def _resolve_paths(settings: Settings) -> Settings:
    """Make the embedded store path absolute: Flink's Python workers run in other directories."""
    if not settings.embedded:
        return settings
    path = Path(settings.clickhouse_embedded_path).expanduser().resolve()
    return settings.model_copy(update={"clickhouse_embedded_path": str(path)})


def _explain(exc: ValidationError, values: Mapping[str, object]) -> list[str]:
    return [_explain_one(error, values) for error in exc.errors(include_url=False)]


def _explain_one(error: ErrorDetails, values: Mapping[str, object]) -> str:
    loc = error["loc"]
    if not loc:
        return str(error["msg"]).removeprefix("Value error, ")
    key = str(loc[0])
    field = Settings.model_fields.get(key)
    name = field.alias if field is not None and field.alias else key
    if name == "job":
        return f"job: must be one of {', '.join(job_names())}"
    secret = key in SECRET_FIELDS or name in {alias(f) for f in SECRET_FIELDS}
    shown = "***" if secret else repr(values.get(name, values.get(key)))
    return f"{name}={shown}: {_accepted(error)}"


def _accepted(error: ErrorDetails) -> str:
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    kind = error["type"]
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "int_parsing" or kind == "int_type":
        return "must be a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    if kind == "extra_forbidden":
        return "is not a setting"
    return str(error["msg"]).removeprefix("Value error, ")
