"""Settings from environment variables: defaults, validation messages, secrets, derived values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal, get_origin

import pytest
from pydantic.fields import FieldInfo

from jupiter_common.errors import SettingsError
from jupiter_common.settings import (
    JOB_NAMES,
    SECRET_VARIABLES,
    Settings,
    drop_secret_variables,
    load_settings,
    secret_file_variable_names,
)

SECRET = "pa55-W0rd-never-shown"


def alias_of(name: str) -> str:
    alias = Settings.model_fields[name].alias
    assert alias is not None
    return alias


def field_of(alias: str) -> str:
    return next(name for name, f in Settings.model_fields.items() if f.alias == alias)


def settings_error(
    environ: dict[str, str], overrides: dict[str, object] | None = None, job: str = "movements"
) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(job, environ, overrides)
    # Raised `from None`: pydantic's own error (which echoes input values) is not chained.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    return str(info.value)


def test_defaults_are_the_container_defaults() -> None:
    settings = load_settings("movements", environ={})
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.kafka_topic == "sessions-topic"
    assert settings.clickhouse_host == "clickhouse"
    assert settings.clickhouse_port == 8123
    assert settings.clickhouse_user == "default"
    assert settings.clickhouse_password.get_secret_value() == ""
    assert settings.clickhouse_database == "default"
    assert settings.flink_parallelism == 1
    assert settings.log_level == "INFO"
    assert not settings.embedded
    assert not settings.bounded


def test_os_environ_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPIC", "from-os-environ")
    assert load_settings("base").kafka_topic == "from-os-environ"


@pytest.mark.parametrize("job", JOB_NAMES)
def test_default_consumer_group_is_per_job(job: str) -> None:
    settings = load_settings(job, environ={})
    assert settings.consumer_group == f"jupiter-{job}"
    assert settings.job_name == f"jupiter-{job}"


@pytest.mark.parametrize("job", JOB_NAMES)
def test_explicit_consumer_group_wins(job: str) -> None:
    settings = load_settings(job, environ={"KAFKA_CONSUMER_GROUP": "my-group"})
    assert settings.consumer_group == "my-group"


def test_unknown_job_is_refused() -> None:
    text = settings_error({}, job="trips")
    assert "job: must be one of base, events, movements" in text


@pytest.mark.parametrize("variable", sorted(Settings.variable_names()))
def test_empty_string_counts_as_unset(variable: str) -> None:
    assert load_settings("events", {variable: ""}) == load_settings("events", {})


def test_all_empty_environment_gives_defaults() -> None:
    everything_empty = dict.fromkeys(Settings.variable_names(), "")
    assert load_settings("base", everything_empty) == load_settings("base", {})


# Values each variable refuses, with fragments the error must contain to say what is accepted.
# Set through the environment unless the variable is in OVERRIDE_ONLY.
INVALID: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "KAFKA_BOOTSTRAP": [("", ("at least 1 character",))],
    "KAFKA_TOPIC": [("two words", ("must match",)), ("a/b", ("must match",))],
    "KAFKA_CONSUMER_GROUP": [("group\x01", ("printable",))],
    "KAFKA_STARTING_OFFSETS": [
        ("newest", ("must be one of", "'group-offsets'", "'earliest'", "'latest'"))
    ],
    "JUPITER_BOUNDED": [("maybe", ("true or false",)), ("2", ("true or false",))],
    "DEAD_LETTER_TOPIC": [("dead letters", ("must match",))],
    "CLICKHOUSE_HOST": [("", ("at least 1 character",))],
    "CLICKHOUSE_PORT": [
        ("http", ("whole number",)),
        ("0", (">= 1",)),
        ("65536", ("<= 65535",)),
    ],
    "CLICKHOUSE_USER": [("", ("at least 1 character",))],
    "CLICKHOUSE_DATABASE": [
        ("my-db", ("must match",)),
        ("1db", ("must match",)),
        ("db`; DROP TABLE x", ("must match",)),
        ("db\n", ("must match",)),
    ],
    "CLICKHOUSE_SECURE": [("sometimes", ("true or false",))],
    "CLICKHOUSE_VERIFY": [("never", ("true or false",))],
    # More cases, with real certificates and keys: tests/unit/test_clickhouse_tls.py.
    "CLICKHOUSE_CA_CERT": [
        ("/nonexistent/ca.pem", ("cannot read the file: No such file or directory",)),
        ("/", ("cannot read the file: Is a directory",)),
        ("/dev/null", ("not a PEM certificate",)),
    ],
    "CLICKHOUSE_CLIENT_CERT": [
        ("/nonexistent/client.pem", ("cannot read the file: No such file or directory",)),
        ("/dev/null", ("not a PEM certificate",)),
    ],
    "CLICKHOUSE_CLIENT_KEY": [
        ("/nonexistent/client.key", ("cannot read the file: No such file or directory",)),
        ("/dev/null", ("not a PEM private key",)),
    ],
    "SINK_BATCH_SIZE": [
        ("lots", ("whole number",)),
        ("1.5", ("whole number",)),
        ("0", (">= 1",)),
        ("1000001", ("<= 1000000",)),
    ],
    "SINK_FLUSH_INTERVAL_MS": [
        ("1s", ("whole number",)),
        ("9", (">= 10",)),
        ("3600001", ("<= 3600000",)),
    ],
    "SINK_MAX_RETRIES": [("many", ("whole number",)), ("-1", (">= 0",)), ("101", ("<= 100",))],
    "SINK_RETRY_BACKOFF_MS": [
        ("x", ("whole number",)),
        ("0", (">= 1",)),
        ("30001", ("<= 30000",)),
    ],
    "FLINK_PYTHON_BUNDLE_SIZE": [
        ("big", ("whole number",)),
        ("0", (">= 1",)),
        ("10000001", ("<= 10000000",)),
    ],
    "FLINK_STATE_BACKEND": [("memory", ("hashmap", "rocksdb"))],
    "SESSION_STATE_TTL_MS": [
        ("1d", ("whole number",)),
        ("999", (">= 1000",)),
        ("31536000001", ("<= 31536000000",)),
    ],
    "FLINK_PARALLELISM": [("auto", ("whole number",)), ("0", (">= 1",)), ("1025", ("<= 1024",))],
    "FLINK_MAX_PARALLELISM": [
        ("x", ("whole number",)),
        ("0", (">= 1",)),
        ("32769", ("<= 32768",)),
    ],
    "FLINK_JOB_NAME": [("job\nname", ("must match",)), ("my job", ("must match",))],
    "FLINK_RESUME": [("never", ("must be one of", "'latest'", "'none'"))],
    "FLINK_CHECKPOINT_INTERVAL_MS": [
        ("10s", ("whole number",)),
        ("99", (">= 100",)),
        ("86400001", ("<= 86400000",)),
    ],
    "LOG_LEVEL": [("VERBOSE", ("must be one of", "'DEBUG'", "'INFO'", "'WARNING'", "'ERROR'"))],
    "METRICS_PORT": [
        ("http", ("must be a port",)),
        ("9259-9249", ("1-65535",)),
        ("70000", ("1-65535",)),
        ("9249-", ("must be a port",)),
    ],
    "LOG_FORMAT": [("xml", ("must be one of", "'text'", "'json'"))],
    "FLINK_WEB_UI_PORT": [
        ("on", ("must be a port",)),
        ("8099-8081", ("1-65535",)),
        ("70000", ("1-65535",)),
        ("0-10", ("1-65535",)),
        ("8081-", ("must be a port",)),
    ],
    "STATUS_INTERVAL_S": [("5s", ("whole number",)), ("-1", (">= 0",)), ("3601", ("<= 3600",))],
    "KAFKA_SECURITY_PROTOCOL": [("TLS", ("must be one of", "'SASL_SSL'"))],
    "KAFKA_SASL_MECHANISM": [("GSSAPI", ("must be one of", "'SCRAM-SHA-512'"))],
}
# Empty means unset in the environment, so these minimum lengths can only be broken by overrides.
OVERRIDE_ONLY = frozenset({"KAFKA_BOOTSTRAP", "CLICKHOUSE_HOST", "CLICKHOUSE_USER"})
# Free text: no value is invalid.
FREE_TEXT = frozenset(
    {
        "CLICKHOUSE_PASSWORD",
        "CLICKHOUSE_EMBEDDED_PATH",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CA_LOCATION",
        "FLINK_CHECKPOINT_DIR",
        "FLINK_CONNECTOR_JARS",
        "FLINK_RESTORE_PATH",
    }
)


def _can_be_invalid(name: str, field: FieldInfo) -> bool:
    if field.annotation in (int, bool) or get_origin(field.annotation) is Literal:
        return True
    if any(
        getattr(meta, "pattern", None) is not None or getattr(meta, "min_length", None)
        for meta in field.metadata
    ):
        return True
    validators = Settings.__pydantic_decorators__.field_validators.values()
    return any(name in validator.info.fields for validator in validators)


def test_every_constrained_variable_has_invalid_cases() -> None:
    constrained = {
        alias_of(name)
        for name, field in Settings.model_fields.items()
        if name != "job" and _can_be_invalid(name, field)
    }
    assert constrained == set(INVALID)
    assert Settings.variable_names() - constrained == FREE_TEXT
    assert set(INVALID) >= OVERRIDE_ONLY


@pytest.mark.parametrize(
    ("variable", "value", "fragments"),
    [
        (variable, value, fragments)
        for variable, cases in INVALID.items()
        for value, fragments in cases
    ],
)
def test_invalid_value_is_explained(variable: str, value: str, fragments: tuple[str, ...]) -> None:
    if variable in OVERRIDE_ONLY:
        text = settings_error({}, {field_of(variable): value})
    else:
        text = settings_error({variable: value})
    assert text.startswith("invalid settings:")
    lines = text.splitlines()[1:]
    assert len(lines) == 1
    assert lines[0].strip().startswith(f"{variable}={value!r}: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_LEVEL", "debug", "DEBUG"),
        ("JUPITER_BOUNDED", "true", True),
        ("CLICKHOUSE_SECURE", "1", True),
        ("CLICKHOUSE_PORT", "9000", 9000),
        ("KAFKA_STARTING_OFFSETS", "earliest", "earliest"),
        ("CLICKHOUSE_DATABASE", "jupiter_2", "jupiter_2"),
        ("KAFKA_TOPIC", "sessions.v2_x-y", "sessions.v2_x-y"),
    ],
)
def test_valid_values_are_converted(variable: str, value: str, expected: object) -> None:
    settings = load_settings("base", {variable: value})
    assert getattr(settings, field_of(variable)) == expected


def test_several_invalid_variables_are_reported_together() -> None:
    environ = {
        "CLICKHOUSE_PORT": "http",
        "LOG_LEVEL": "loud",
        "KAFKA_TOPIC": "a b",
        "FLINK_PARALLELISM": "0",
        "KAFKA_BOOTSTRAP": "broker:9092",
    }
    text = settings_error(environ, job="nope")
    lines = text.splitlines()[1:]
    assert len(lines) == 5
    for expected in (
        "job: must be one of",
        "CLICKHOUSE_PORT='http': must be a whole number",
        "LOG_LEVEL='loud': must be one of",
        "KAFKA_TOPIC='a b': must match",
        "FLINK_PARALLELISM='0': must be >= 1",
    ):
        assert any(expected in line for line in lines), expected
    assert "KAFKA_BOOTSTRAP" not in text


def test_password_is_not_in_the_error_text() -> None:
    text = settings_error(
        {"CLICKHOUSE_PASSWORD": SECRET, "CLICKHOUSE_PORT": "x", "CLICKHOUSE_USER": "bob"}
    )
    assert "CLICKHOUSE_PORT" in text
    assert SECRET not in text


def test_invalid_password_is_named_but_not_shown() -> None:
    text = settings_error({}, {"clickhouse_password": 31337424242})
    assert "CLICKHOUSE_PASSWORD=***" in text
    assert "31337424242" not in text


def test_password_is_not_in_redacted_or_repr() -> None:
    settings = load_settings("base", {"CLICKHOUSE_PASSWORD": SECRET})
    assert settings.clickhouse_password.get_secret_value() == SECRET
    redacted = settings.redacted()
    assert redacted["CLICKHOUSE_PASSWORD"] == "***"
    assert SECRET not in repr(redacted)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_redacted_lists_every_variable() -> None:
    redacted = load_settings("base", {}).redacted()
    assert set(redacted) == Settings.variable_names()
    assert redacted["CLICKHOUSE_PASSWORD"] == ""
    assert redacted["KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_overrides_win_over_defaults() -> None:
    settings = load_settings("base", {}, {"bounded": True, "kafka_topic": "cli-topic"})
    assert settings.bounded
    assert settings.kafka_topic == "cli-topic"


def test_overrides_win_over_environ() -> None:
    environ = {"JUPITER_BOUNDED": "false", "KAFKA_TOPIC": "env-topic"}
    settings = load_settings("base", environ, {"bounded": True, "kafka_topic": "cli-topic"})
    assert settings.bounded
    assert settings.kafka_topic == "cli-topic"


def test_embedded_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings("base", {"CLICKHOUSE_EMBEDDED_PATH": "data/./x/../clickhouse"})
    assert settings.embedded
    assert Path(settings.clickhouse_embedded_path).is_absolute()
    assert settings.clickhouse_embedded_path == str((tmp_path / "data/clickhouse").resolve())


def test_embedded_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings("base", {"CLICKHOUSE_EMBEDDED_PATH": "~/store"})
    assert settings.clickhouse_embedded_path == str((tmp_path / "store").resolve())


def test_no_embedded_path_means_a_server() -> None:
    settings = load_settings("base", {})
    assert settings.clickhouse_embedded_path == ""
    assert not settings.embedded


@pytest.mark.parametrize(
    "environ",
    [
        {"FLINK_PARALLELISM": "200"},
        {"FLINK_PARALLELISM": "4", "FLINK_MAX_PARALLELISM": "2"},
    ],
)
def test_parallelism_above_max_parallelism_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="MAX_PARALLELISM"):
        load_settings("movements", environ)


def test_variable_names_are_the_settings_users_set() -> None:
    """Every field but ``job`` (the job's own entry point gives it) is read from a variable, and
    the seed's variable names are among them. That each variable is read is shown per variable
    by ``test_invalid_value_is_explained`` and ``test_valid_values_are_converted``."""
    names = Settings.variable_names()
    assert len(names) == len(Settings.model_fields) - 1
    assert "job" not in names
    assert {
        "KAFKA_BOOTSTRAP",
        "KAFKA_TOPIC",
        "KAFKA_CONSUMER_GROUP",
        "CLICKHOUSE_HOST",
        "CLICKHOUSE_PORT",
        "CLICKHOUSE_USER",
        "CLICKHOUSE_PASSWORD",
        "CLICKHOUSE_DATABASE",
        "FLINK_PARALLELISM",
        "FLINK_JOB_NAME",
        "LOG_LEVEL",
    } <= names
    assert all(name.isupper() and name.isidentifier() for name in names)


def test_variables_not_in_the_list_are_ignored() -> None:
    assert load_settings("base", {"KAFKA_TOPICS": "x", "PATH": "/bin"}) == load_settings("base", {})


def test_settings_are_frozen() -> None:
    settings = load_settings("base", {})
    with pytest.raises(ValueError, match="frozen"):
        settings.kafka_topic = "other"


def test_sasl_needs_credentials_and_never_shows_the_password() -> None:
    text = settings_error({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "hunter2"})
    assert "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD" in text
    assert "hunter2" not in text
    settings = load_settings(
        "events",
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "jupiter",
            "KAFKA_SASL_PASSWORD": "hunter2",
        },
    )
    assert settings.redacted()["KAFKA_SASL_PASSWORD"] == "***"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.redacted())


# --------------------------------------------------------------------------------------------
# Secrets from files: <NAME>_FILE
# --------------------------------------------------------------------------------------------

SECRET_FIELD = {
    "CLICKHOUSE_PASSWORD": "clickhouse_password",
    "KAFKA_SASL_PASSWORD": "kafka_sasl_password",
}


def test_the_secret_variables_and_their_file_variables() -> None:
    assert set(SECRET_FIELD) == SECRET_VARIABLES
    assert secret_file_variable_names() == {"CLICKHOUSE_PASSWORD_FILE", "KAFKA_SASL_PASSWORD_FILE"}
    assert not secret_file_variable_names() & Settings.variable_names()


@pytest.mark.parametrize("variable", sorted(SECRET_FIELD))
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (SECRET, SECRET),
        (SECRET + "\n", SECRET),  # `echo secret > file`
        (SECRET + "\r\n", SECRET),
        (SECRET + "\n\n", SECRET + "\n"),  # one line break only
        (" " + SECRET + " ", " " + SECRET + " "),  # blanks are the secret's
        ("pässwörd", "pässwörd"),
    ],
    ids=["plain", "newline", "crlf", "two-newlines", "blanks", "utf8"],
)
def test_a_secret_is_read_from_its_file(
    tmp_path: Path, variable: str, content: str, expected: str
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content.encode())
    settings = load_settings("movements", {f"{variable}_FILE": str(path)})
    assert getattr(settings, SECRET_FIELD[variable]).get_secret_value() == expected
    assert settings.redacted()[variable] == "***"
    assert SECRET not in repr(settings) and SECRET not in str(settings.redacted())


def test_a_secret_file_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pw").write_text(SECRET)
    settings = load_settings("base", {"CLICKHOUSE_PASSWORD_FILE": "~/pw"})
    assert settings.clickhouse_password.get_secret_value() == SECRET


def test_secret_files_give_sasl_its_credentials(tmp_path: Path) -> None:
    (tmp_path / "sasl").write_text(SECRET + "\n")
    settings = load_settings(
        "events",
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "jupiter",
            "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "sasl"),
        },
    )
    assert settings.kafka_sasl_password.get_secret_value() == SECRET


@pytest.mark.parametrize("variable", sorted(SECRET_FIELD))
def test_an_empty_secret_file_or_file_variable_counts_as_unset(
    tmp_path: Path, variable: str
) -> None:
    (tmp_path / "empty").write_text("")
    for environ in ({f"{variable}_FILE": str(tmp_path / "empty")}, {f"{variable}_FILE": ""}):
        settings = load_settings("base", environ)
        assert getattr(settings, SECRET_FIELD[variable]).get_secret_value() == ""
    settings = load_settings("base", {variable: SECRET, f"{variable}_FILE": ""})
    assert getattr(settings, SECRET_FIELD[variable]).get_secret_value() == SECRET


def _unreadable(tmp_path: Path, case: str) -> Path:
    path = tmp_path / case
    if case == "missing":
        return path
    if case == "directory":
        path.mkdir()
    elif case == "not-utf8":
        path.write_bytes(SECRET.encode() + b"\xff\xfe")
    elif case == "too-large":
        path.write_bytes(SECRET.encode() * 10_000)
    elif case == "no-permission":
        path.write_text(SECRET)
        path.chmod(0)
    return path


@pytest.mark.parametrize("variable", sorted(SECRET_FIELD))
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "No such file or directory"),
        ("directory", "Is a directory"),
        ("not-utf8", "not UTF-8 text"),
        ("too-large", "larger than 65536 bytes"),
        ("no-permission", "Permission denied"),
    ],
)
def test_an_unreadable_secret_file_is_named_and_its_content_never_shown(
    tmp_path: Path, variable: str, case: str, reason: str
) -> None:
    path = _unreadable(tmp_path, case)
    if case == "no-permission" and os.access(path, os.R_OK):
        pytest.skip("running as a user who reads any file (root)")
    text = settings_error({f"{variable}_FILE": str(path)})
    lines = text.splitlines()[1:]
    assert len(lines) == 1
    assert lines[0].strip() == f"{variable}_FILE={str(path)!r}: cannot read the secret: {reason}"
    assert SECRET not in text


@pytest.mark.parametrize("variable", sorted(SECRET_FIELD))
def test_a_secret_given_both_ways_is_refused(tmp_path: Path, variable: str) -> None:
    (tmp_path / "pw").write_text("from-the-file")
    text = settings_error({variable: SECRET, f"{variable}_FILE": str(tmp_path / "pw")})
    assert f"{variable} and {variable}_FILE are both set: set only one of them" in text
    assert SECRET not in text and "from-the-file" not in text


def test_secret_file_errors_are_reported_with_the_other_invalid_variables(tmp_path: Path) -> None:
    text = settings_error(
        {
            "CLICKHOUSE_PASSWORD_FILE": str(tmp_path / "missing"),
            "KAFKA_SASL_PASSWORD": SECRET,
            "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing-too"),
            "CLICKHOUSE_PORT": "http",
        }
    )
    lines = [line.strip() for line in text.splitlines()[1:]]
    assert len(lines) == 3
    assert lines[0].startswith("CLICKHOUSE_PASSWORD_FILE=")
    assert lines[1].startswith("KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set")
    assert lines[2].startswith("CLICKHOUSE_PORT='http'")
    assert SECRET not in text


def test_drop_secret_variables_removes_the_secrets_only(tmp_path: Path) -> None:
    environ = {
        "CLICKHOUSE_PASSWORD": SECRET,
        "KAFKA_SASL_PASSWORD": SECRET,
        "CLICKHOUSE_PASSWORD_FILE": str(tmp_path / "pw"),
        "CLICKHOUSE_USER": "bob",
        "PATH": "/bin",
    }
    assert drop_secret_variables(environ) == ["CLICKHOUSE_PASSWORD", "KAFKA_SASL_PASSWORD"]
    assert environ == {
        "CLICKHOUSE_PASSWORD_FILE": str(tmp_path / "pw"),
        "CLICKHOUSE_USER": "bob",
        "PATH": "/bin",
    }
    assert drop_secret_variables(environ) == []


def test_drop_secret_variables_defaults_to_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", SECRET)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD", raising=False)
    assert drop_secret_variables() == ["CLICKHOUSE_PASSWORD"]
    assert "CLICKHOUSE_PASSWORD" not in os.environ
    # Processes started afterwards do not inherit it either.
    shown = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ.get('CLICKHOUSE_PASSWORD'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "None"
