"""A job in the foreground: the settings, the web UI's class path and REST options, the status
line's figures, format and on/off decision, and the JSON log lines of the driver and workers."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from jupiter_common.errors import SettingsError
from jupiter_common.flink.environment import LOCAL_LOG4J, SILENCE_ENVIRONMENT_DUMP, connector_jars
from jupiter_common.flink.status_line import (
    Sample,
    format_status,
    status_line_enabled,
    take_sample,
)
from jupiter_common.flink.web_ui import (
    CLASSPATH_VARIABLE,
    find_web_ui_jar,
    prepare_web_ui,
    rest_configuration,
    starts_own_cluster,
)
from jupiter_common.logs import (
    LOCAL_LOG4J_JSON,
    JsonFormatter,
    announce,
    configure_worker_logging,
    prepare_jvm_logging,
)
from jupiter_common.settings import Settings, load_settings


def settings(**env: str) -> Settings:
    return load_settings("movements", environ=env)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- settings ---------------------------------------------------------------------------------


def test_defaults_are_readable_text_a_web_ui_range_and_a_status_every_five_seconds() -> None:
    s = settings()
    assert (s.log_format, s.flink_web_ui_port, s.status_interval_s) == ("text", "8081-8099", 5)


@pytest.mark.parametrize("value", ["off", "OFF", "0", "8081", "9000-9010", "65535"])
def test_web_ui_port_accepts_a_port_a_range_zero_or_off(value: str) -> None:
    assert settings(FLINK_WEB_UI_PORT=value).flink_web_ui_port == value.lower()


@pytest.mark.parametrize("value", ["on", "80-", "9010-9000", "70000", "0-10", "8081,8082"])
def test_a_bad_web_ui_port_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="FLINK_WEB_UI_PORT"):
        settings(FLINK_WEB_UI_PORT=value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("LOG_FORMAT", "xml"), ("STATUS_INTERVAL_S", "-1"), ("STATUS_INTERVAL_S", "x")],
)
def test_a_bad_log_format_or_interval_stops_start_up_naming_the_variable(
    name: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        settings(**{name: value})


def test_log_format_is_case_insensitive() -> None:
    assert settings(LOG_FORMAT="JSON").log_format == "json"


# --- web UI -----------------------------------------------------------------------------------


def test_the_web_ui_jar_goes_on_the_jvm_class_path_but_is_not_shipped(tmp_path: Path) -> None:
    for name in ("flink-runtime-web-2.2.1.jar", "flink-sql-connector-kafka-5.0.0-2.2.jar"):
        (tmp_path / name).write_bytes(b"PK")
    s = settings(FLINK_CONNECTOR_JARS=str(tmp_path))
    assert find_web_ui_jar(s) == tmp_path / "flink-runtime-web-2.2.1.jar"
    assert [Path(url).name for url in connector_jars(s)] == [
        "flink-sql-connector-kafka-5.0.0-2.2.jar"
    ]
    environ = {CLASSPATH_VARIABLE: "/opt/hadoop/conf"}
    assert prepare_web_ui(s, environ)
    assert environ[CLASSPATH_VARIABLE] == os.pathsep.join(
        ["/opt/hadoop/conf", str(tmp_path / "flink-runtime-web-2.2.1.jar")]
    )
    assert prepare_web_ui(s, environ)  # twice: still once on the class path
    assert environ[CLASSPATH_VARIABLE].count("flink-runtime-web") == 1


def test_no_web_ui_when_off_missing_or_on_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "flink-runtime-web-2.2.1.jar").write_bytes(b"PK")
    off = settings(FLINK_CONNECTOR_JARS=str(tmp_path), FLINK_WEB_UI_PORT="off")
    environ: dict[str, str] = {}
    assert not prepare_web_ui(off, environ)
    assert not prepare_web_ui(settings(FLINK_CONNECTOR_JARS=str(tmp_path / "none")), environ)
    on_cluster = {"PYFLINK_GATEWAY_PORT": "40000"}
    assert not starts_own_cluster(on_cluster)
    assert not prepare_web_ui(settings(FLINK_CONNECTOR_JARS=str(tmp_path)), on_cluster)
    assert environ == {}
    assert CLASSPATH_VARIABLE not in on_cluster


def test_the_rest_endpoint_listens_on_loopback_on_the_chosen_port() -> None:
    assert rest_configuration(settings(FLINK_WEB_UI_PORT="9000-9010")) == {
        "rest.bind-address": "127.0.0.1",
        "rest.address": "127.0.0.1",
        "rest.bind-port": "9000-9010",
    }
    assert rest_configuration(settings(FLINK_WEB_UI_PORT="off"))["rest.bind-port"] == "0"


# --- status line ------------------------------------------------------------------------------


def test_the_status_line_shows_on_a_terminal_with_text_logs_only() -> None:
    assert status_line_enabled(settings(), Terminal())
    assert not status_line_enabled(settings(), io.StringIO())  # a pipe or a file
    assert not status_line_enabled(settings(LOG_FORMAT="json"), Terminal())
    assert not status_line_enabled(settings(STATUS_INTERVAL_S="0"), Terminal())


def test_the_status_line_formats_rate_totals_lag_and_checkpoint_age() -> None:
    before = Sample(10.0, "RUNNING", {"records_in": 1_000.0}, None)
    now = Sample(
        15.0,
        "RUNNING",
        {"records_in": 51_000.0, "rows_written": 1_204_331.0, "dead_letters": 12.0, "lag": 0.0},
        3.2,
    )
    assert format_status("jupiter-movements", now, before, "12:04:31") == (
        "jupiter-movements 12:04:31 RUNNING  in 10,000/s  rows 1,204,331  dead letters 12"
        "  lag 0  checkpoint 3 s ago"
    )


def test_figures_not_reported_yet_show_as_dashes() -> None:
    first = Sample(1.0, "INITIALIZING", {}, None)
    assert format_status("jupiter-base", first, None, "00:00:01") == (
        "jupiter-base 00:00:01 INITIALIZING  in -/s  rows -  dead letters -  lag -"
        "  checkpoint none yet"
    )
    late = Sample(2.0, "RUNNING", {"records_in": 5.0}, 600.0)
    assert format_status("j", late, first, "t").endswith("checkpoint 10 min ago")


def test_a_sample_sums_each_figure_over_operators_from_the_rest_api() -> None:
    """The REST answers of a job with a Kafka source and two Python operators (their shape as
    Flink 2.2 returns them)."""
    metrics = {
        "v1": {
            "Source__kafka.pendingRecords": 40.0,
            "Source__kafka.numRecordsOut": 999.0,
            "Calc[2].jupiter.records_in": 1_000.0,
            "Calc[2].jupiter.records_rejected": 3.0,
        },
        "v2": {
            "Calc(a, b)[5].jupiter.rows_written": 990.0,
            "Calc(a, b)[5].jupiter.records_in": 7.0,
        },
    }
    asked: list[str] = []

    def get(path: str) -> Any:
        asked.append(path)
        if path == "/jobs/j1":
            return {"state": "RUNNING", "vertices": [{"id": "v1"}, {"id": "v2"}]}
        if path == "/jobs/j1/checkpoints":
            return {"latest": {"completed": {"latest_ack_timestamp": 95_000}}}
        vertex = path.split("/")[4]
        if "?" not in path:
            return [{"id": name} for name in metrics[vertex]]
        name = path.split("get=")[1].split("&")[0].replace("%5B", "[").replace("%5D", "]")
        name = name.replace("%28", "(").replace("%29", ")").replace("%2C", ",").replace("+", " ")
        return [{"id": name, "sum": metrics[vertex][name]}]

    sample = take_sample(get, "j1", now_ms=100_000)
    assert sample.state == "RUNNING"
    assert sample.totals == {
        "lag": 40.0,
        "records_in": 1_007.0,
        "dead_letters": 3.0,
        "rows_written": 990.0,
    }
    assert sample.checkpoint_age_s == 5.0
    assert not any("numRecordsOut" in path for path in asked)


def test_no_checkpoint_yet_has_no_age() -> None:
    def get(path: str) -> Any:
        if path.endswith("/checkpoints"):
            return {"latest": {"completed": None}}
        return {"state": "RUNNING", "vertices": []}

    assert take_sample(get, "j1").checkpoint_age_s is None


# --- logs -------------------------------------------------------------------------------------


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord(
        "jupiter_common.writer", logging.WARNING, "w.py", 7, message, args, exc_info
    )
    made.created = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
    return made


def test_a_json_line_has_time_level_job_logger_message() -> None:
    line = JsonFormatter("jupiter-movements").format(record("insert %s of %d", "failed", 3))
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-01-01T00:00:00.250Z",
        "level": "WARNING",
        "job": "jupiter-movements",
        "logger": "jupiter_common.writer",
        "message": "insert failed of 3",
    }


def test_a_json_line_carries_the_exception_on_the_same_line() -> None:
    line = JsonFormatter("j").format(record("insert failed\nsecond line", exc=True))
    assert len(line.splitlines()) == 1
    entry = json.loads(line)
    assert entry["message"] == "insert failed\nsecond line"
    assert entry["exception"].startswith("Traceback")
    assert "ValueError: bad value" in entry["exception"]


class Collect(logging.Handler):
    """Stands for Beam's handler in a worker: sends ``format(record)`` and the traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.sent.append((self.format(record), record.exc_info is not None))


@pytest.fixture
def worker_root() -> Any:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    handler = Collect()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    yield handler
    root.handlers, root.level = saved, level


def test_a_worker_sends_each_record_as_one_json_object(worker_root: Collect) -> None:
    s = settings(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    configure_worker_logging(s)
    configure_worker_logging(s)  # a second function in the same worker
    assert len(worker_root.filters) == 1
    assert logging.getLogger("jupiter_common").level == logging.DEBUG
    try:
        raise RuntimeError("ClickHouse down")
    except RuntimeError:
        logging.getLogger("jupiter_common.writer").exception("insert failed")
    opened, (message, with_traceback) = worker_root.sent[0], worker_root.sent[-1]
    assert json.loads(opened[0])["message"].startswith("python worker ")
    assert not with_traceback  # Beam would print it on lines of its own
    entry = json.loads(message)
    assert (entry["level"], entry["job"], entry["logger"]) == (
        "ERROR",
        "jupiter-movements",
        "jupiter_common.writer",
    )
    assert "RuntimeError: ClickHouse down" in entry["exception"]


def test_a_worker_with_text_logs_keeps_its_handler(worker_root: Collect) -> None:
    configure_worker_logging(settings(LOG_LEVEL="WARNING"))
    assert worker_root.filters == []
    assert logging.getLogger("jupiter").level == logging.WARNING


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_worker_leaves_the_root_loggers_level_alone(
    worker_root: Collect, log_format: str
) -> None:
    """LOG_LEVEL is Jupiter's loggers' level; a worker's root logger (Beam's and PyFlink's
    records) keeps the level the worker gave it, whatever a function's ``open`` does."""
    configure_worker_logging(settings(LOG_LEVEL="DEBUG", LOG_FORMAT=log_format))
    assert logging.getLogger().level == logging.INFO
    assert logging.getLogger("jupiter_common").level == logging.DEBUG


def test_the_jvm_of_a_json_run_logs_json_and_copies_the_workers_lines_to_stdout() -> None:
    environ: dict[str, str] = {}
    assert prepare_jvm_logging(settings(), environ) == LOCAL_LOG4J
    assert prepare_jvm_logging(settings(LOG_FORMAT="json"), environ) == LOCAL_LOG4J_JSON
    assert environ == {"JUPITER_LOG_JOB": "jupiter-movements"}
    text = LOCAL_LOG4J_JSON.read_text()
    assert SILENCE_ENVIRONMENT_DUMP in text
    assert "appender.file.layout.type = JsonTemplateLayout" in text
    assert "appender.workers.target = SYSTEM_OUT" in text
    template = next(line.split("=", 1)[1] for line in text.splitlines() if "eventTemplate" in line)
    fields = json.loads(template.replace("${env:JUPITER_LOG_JOB:-}", "job"))
    assert set(fields) == {"time", "level", "job", "logger", "message", "exception"}


def test_announcements_are_plain_lines_or_json_objects(capsys: pytest.CaptureFixture[str]) -> None:
    announce(settings(), "savepoint: file:///x")
    announce(settings(LOG_FORMAT="json", LOG_LEVEL="ERROR"), "savepoint: file:///y")
    plain, structured = capsys.readouterr().out.splitlines()
    assert plain == "savepoint: file:///x"
    assert json.loads(structured)["message"] == "savepoint: file:///y"
